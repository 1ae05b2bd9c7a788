"""The one place that knows the faithful hyper-parameters of the 2015 Chainer DCGAN (anime faces).

Each value is what the original training script used; ``docs/faithfulness.rst`` lists the source of
each. Variants elsewhere in the package are options whose defaults come from here.
"""

#: Dimension of the latent vector z.
Z_DIM = 100
#: z is drawn uniformly from [Z_LOW, Z_HIGH].
Z_LOW, Z_HIGH = -1.0, 1.0
#: Side of the square training images and generated faces, in pixels.
IMAGE_SIZE = 96
#: Side of the generator's first feature map (96 / 2**4).
BASE_SIZE = 6
#: Channels of the generator's deconvolutions, input first.
GEN_CHANNELS = (512, 256, 128, 64, 3)
#: Channels of the discriminator's convolutions, input first.
DIS_CHANNELS = (3, 64, 128, 256, 512)
#: Image sides the models are built for (:func:`chainer_dcgan.models.faithful.architecture`); 96 is faithful.
SIZES = (64, 96, 128, 256)
#: Channels of the widest and narrowest hidden layers at other sizes: the layer next to the image
#: has SIZE_MIN_CHANNELS, each halving of the resolution doubles it, up to SIZE_MAX_CHANNELS.
SIZE_MIN_CHANNELS, SIZE_MAX_CHANNELS = 64, 512
#: Side of the generator's first feature map at the sizes other than 96.
SIZE_BASE = 4
#: Kernel, stride and padding of every (de)convolution.
KSIZE, STRIDE, PAD = 4, 2, 1
#: Standard deviation of the normal initial weights.
INIT_STD = 0.02
#: BatchNormalization as in Chainer 1.x (Chainer 7 defaults to eps=2e-5).
BN_EPS = 1e-5
#: Decay of BatchNormalization's running averages (Chainer 1.x and 7 default).
BN_DECAY = 0.9
#: Adam, the same for G and D.
ADAM_ALPHA = 2e-4
#: Adam's first-moment decay (the original's; Chainer's default is 0.9).
ADAM_BETA1 = 0.5
#: Adam's second-moment decay (Chainer's default).
ADAM_BETA2 = 0.999
#: Adam's epsilon (Chainer's default).
ADAM_EPS = 1e-8
#: L2 weight decay hook rate, on both optimizers.
WEIGHT_DECAY = 1e-5
#: Minibatch size.
BATCH_SIZE = 100
#: Class labels of the 2-class softmax cross-entropy: D says REAL for data and FAKE for G's
#: output; G is trained towards REAL on its fakes.
REAL_LABEL, FAKE_LABEL = 0, 1
#: Pixel scaling: x = (pixel - PIXEL_OFFSET) / PIXEL_SCALE.
PIXEL_OFFSET = 128.0
#: Divisor of the pixel scaling (see PIXEL_OFFSET).
PIXEL_SCALE = 128.0
#: Training images are flipped horizontally with this probability.
FLIP_PROBABILITY = 0.5
#: Sample grids: GRID_ROWS x GRID_COLS faces, the first GRID_FIXED from z fixed for the whole run.
GRID_ROWS, GRID_COLS = 10, 10
#: How many cells of a sample grid use the run's fixed z.
GRID_FIXED = 50
