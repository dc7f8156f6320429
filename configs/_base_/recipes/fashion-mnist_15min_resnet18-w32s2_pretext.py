# Shared by the pretext-task baselines on Fashion-MNIST (rotation, relative
# patch location, jigsaw): the two-view recipes' network (ResNet-18, CIFAR
# stem, width 32, stride-2 first stage), batch augmentation and bf16, with one
# view per image, global average pooling as the neck and a LossHead whose loss
# is the task's classifier (PretextClsLoss). A task config sets the model's
# type, the classifier's size and max_epochs (what fits 15 minutes on 2 cores).
# kNN validation reads the pooled backbone features (the model has no bank:
# KNNReferenceHook extracts the training images' embeddings).
_base_ = './fashion-mnist_15min_resnet18-w32s2_two-view.py'

model = dict(
    data_preprocessor=dict(augment=dict(num_views=1)),
    neck=dict(_delete_=True, type='GlobalAveragePooling'),
    head=dict(type='LossHead', loss=dict(type='PretextClsLoss')))

# the patches, tiles and permutations (and the masked-intensity task's
# blocks) are drawn from the global RNG in the model: each rank its own
# (rank 0 keeps the seed)
randomness = dict(seed=0, diff_rank_seed=True)

time_budget_minutes = 13  # max_epochs or 13 min (docs/fast_training.md)
