"""Development-only code: the local stack, its stand-ins, event builders and benchmarks' helpers.

Never shipped in the Lambda layer (the layer is ``src/video_library`` alone).
"""
