"""ganvid.face"""
