_base_ = 'mmpretrain::_base_/default_runtime.py'

# Register mm_instdisc's models, hooks, datasets and metrics (and apply its
# torch>=2.6 / CPU-distributed compatibility fixes for mmengine).
custom_imports = dict(
    imports=[
        'mm_instdisc.models', 'mm_instdisc.engine', 'mm_instdisc.datasets',
        'mm_instdisc.evaluation'
    ],
    allow_failed_imports=False)

# Hooks every run needs. They are extra keys of default_hooks, not entries of
# custom_hooks: config dicts merge by key, so a config that lists its own
# custom_hooks cannot drop them (mmengine's Runner registers every key of
# default_hooks as a hook, see Runner.register_default_hooks).
# RandomStateHook stores every rank's random generators in checkpoints so
# that a resumed run continues exactly where it stopped; CheckpointSafetyHook
# writes checkpoints atomically and lets an auto-resume fall back past a
# damaged latest checkpoint; BNStatsSyncHook averages BatchNorm running
# statistics over the ranks before checkpoints and validations (multi-GPU
# runs; a no-op in one process).
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    random_state=dict(type='RandomStateHook'),
    bn_stats_sync=dict(type='BNStatsSyncHook'),
    checkpoint_safety=dict(type='CheckpointSafetyHook'),
)
custom_hooks = []

randomness = dict(seed=0, deterministic=False)
