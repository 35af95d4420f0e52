"""Edge extraction: HED (OpenCV DNN) or a documented fallback, plus the pix2pix post-processing."""
