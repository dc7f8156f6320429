_base_ = 'mmpretrain::_base_/default_runtime.py'

# Register mm_instdisc's models, hooks, datasets and metrics (and apply its
# torch>=2.6 / CPU-distributed compatibility fixes for mmengine).
custom_imports = dict(
    imports=[
        'mm_instdisc.models', 'mm_instdisc.engine', 'mm_instdisc.datasets',
        'mm_instdisc.evaluation'
    ],
    allow_failed_imports=False)

default_hooks = dict(logger=dict(type='LoggerHook', interval=50))

# RandomStateHook stores every rank's random generators in checkpoints so
# that a resumed run continues exactly where it stopped; CheckpointSafetyHook
# writes checkpoints atomically and lets an auto-resume fall back past a
# damaged latest checkpoint (tools/train.py adds it to any config);
# BNStatsSyncHook averages BatchNorm running statistics over the ranks before
# checkpoints and validations (multi-GPU runs; a no-op in one process).
custom_hooks = [
    dict(type='RandomStateHook'),
    dict(type='BNStatsSyncHook'),
    dict(type='CheckpointSafetyHook'),
]

randomness = dict(seed=0, deterministic=False)
