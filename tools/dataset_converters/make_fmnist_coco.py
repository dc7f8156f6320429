"""Write the composed Fashion-MNIST instance-segmentation set (COCO format).

    python tools/dataset_converters/make_fmnist_coco.py \
        [--fmnist-root data/fashion_mnist] [--out data/fmnist_coco] \
        [--num-train 2000] [--num-val 500] [--canvas 128] [--seed 0]

The program is ``mm_instdisc.apis.make_fmnist_coco.main``
(``mm-instdisc-make-fmnist-coco``; ``--help`` describes it).
"""

if __name__ == '__main__':
    from mm_instdisc.apis.make_fmnist_coco import main
    main()
