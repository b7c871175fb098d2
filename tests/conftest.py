import torch


# The tiny test models are dominated by per-op overhead, which a second thread only adds to (about 10x on a
# 2-core machine); subprocess tests (accelerate launch) choose their own thread counts.
torch.set_num_threads(1)
