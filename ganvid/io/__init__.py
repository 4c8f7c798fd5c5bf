"""ganvid.io"""
