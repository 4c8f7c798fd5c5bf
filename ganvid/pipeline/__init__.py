"""ganvid.pipeline"""
