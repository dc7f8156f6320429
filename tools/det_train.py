"""Train an mmdet model (detection transfer) with mmengine's Runner.

    python tools/det_train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options model.backbone.init_cfg.checkpoint=CKPT ...]
    bash tools/benchmarks/mmdetection/dist_train_fpn.sh CONFIG CKPT GPUS

The program is ``mm_instdisc.apis.det_train.main`` (what
``mm-instdisc-det-train`` runs on the config it writes).
"""
import _common  # noqa: F401  (sys.path, compat patches)

if __name__ == '__main__':
    from mm_instdisc.apis.det_train import main
    main()
