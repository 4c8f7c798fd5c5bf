"""ganvid.nn"""
