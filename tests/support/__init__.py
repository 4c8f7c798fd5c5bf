"""Helpers the tests share: clips from real photos, tiny networks written in the published
checkpoint layouts, and generated videos. Everything is made by code; nothing is downloaded.
Test modules import from here (`from support.face_clips import astronaut`), never from each
other."""
