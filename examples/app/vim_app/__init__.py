# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The work behind examples/app/app.py, free of Gradio: loading the models (`loading`), checking and streaming a
generation (`generation`, `streaming`), and an image through the tokenizer (`tokenizer_view`)."""
