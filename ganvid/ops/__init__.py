"""ganvid.ops"""
