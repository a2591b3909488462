"""Training: model zoo, data, augmentation, the training loop, checkpoints, runs and tuning.

Importing this package needs the ``train`` extra (PyTorch + torchvision).
"""
