from ganvid.cli import main

main()
