"""Demos built on emomusic's public Python API (the Gradio app lives in `demos.app`)."""
