"""ganvid.edit"""
