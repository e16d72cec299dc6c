"""video-library: keeps AI-generated videos. This package is the Lambda layer shared by every function."""
