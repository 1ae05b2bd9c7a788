"""Trainer extensions: sample grids, cheap quality metrics, FID/KID and the generator's moving average."""
from chainer_dcgan.training.extensions.ema import GeneratorAverage
from chainer_dcgan.training.extensions.fid import FIDEvaluation, add_fid_evaluation
from chainer_dcgan.training.extensions.sample_grid import SampleGrid
from chainer_dcgan.training.extensions.statistics import StatisticsDistance

__all__ = ["SampleGrid", "StatisticsDistance", "FIDEvaluation", "add_fid_evaluation", "GeneratorAverage"]
