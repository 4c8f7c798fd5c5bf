"""ganvid.commands"""
