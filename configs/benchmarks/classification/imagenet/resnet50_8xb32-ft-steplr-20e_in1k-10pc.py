# Semi-supervised ImageNet fine-tuning with 10% of the labels (128 images per
# class, class-balanced, fixed by seed); otherwise as the 1% config.
_base_ = './resnet50_8xb32-ft-steplr-20e_in1k-1pc.py'

train_dataloader = dict(dataset=dict(fraction=0.1))
