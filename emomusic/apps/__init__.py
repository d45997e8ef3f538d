"""Applications over the pipeline (the Gradio demo)."""
