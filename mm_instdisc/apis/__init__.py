"""The command-line programs as functions: each module's ``main(argv=None)``
parses ``argv`` (``sys.argv[1:]`` when None) and runs the program. The
console scripts (``mm_instdisc.cli``) and the scripts in a checkout's
``tools/`` (thin wrappers, kept for mmpretrain-style use such as
``python tools/train.py CONFIG`` and ``bash tools/dist_train.sh``) call them.

* ``train``: ``mm-instdisc-train CONFIG``, ``tools/train.py``
* ``test``: ``mm-instdisc-test``, ``tools/test.py``
* ``knn_eval``: ``mm-instdisc-knn-eval``, ``tools/knn_eval.py``
* ``det_train``: the run of ``mm-instdisc-det-train``, ``tools/det_train.py``
* ``convert``: ``mm-instdisc-convert``,
  ``tools/model_converters/selfsup_to_backbone.py``
* ``make_fmnist_coco``: ``mm-instdisc-make-fmnist-coco``,
  ``tools/dataset_converters/make_fmnist_coco.py``

Nothing is imported here: each module imports what its program needs.
"""
