"""Every ``chainer_dcgan`` import that README.rst, docs/, examples/, tools/, bench/ and tests/ made
before the package moved into folders by role still works, under the old name, as the same object
(chainer_dcgan/_moved.py holds the table of old -> new names)."""
import importlib
import subprocess
import sys

import pytest

import chainer_dcgan
from chainer_dcgan import _moved

#: ``module:name`` (``from module import name``) or a dotted path (a module, or a module's attribute),
#: as found in the tree at 72bb759, the last commit before the move.
OLD_IMPORTS = [
    'chainer_dcgan:DCGANUpdater',
    'chainer_dcgan:Discriminator',
    'chainer_dcgan:Generator',
    'chainer_dcgan:_compat',
    'chainer_dcgan:agreement',
    'chainer_dcgan:export',
    'chainer_dcgan:faces',
    'chainer_dcgan:functions',
    'chainer_dcgan:hparams',
    'chainer_dcgan:inception',
    'chainer_dcgan:jsonio',
    'chainer_dcgan:links',
    'chainer_dcgan:manifest',
    'chainer_dcgan:metrics',
    'chainer_dcgan:pretrained',
    'chainer_dcgan:safebooru',
    'chainer_dcgan:sample_z',
    'chainer_dcgan:tagging',
    'chainer_dcgan:zspace',
    'chainer_dcgan.DCGANUpdater',
    'chainer_dcgan.__version__',
    'chainer_dcgan.agreement',
    'chainer_dcgan.agreement:conditional_agreement',
    'chainer_dcgan.agreement:mean_auc',
    'chainer_dcgan.agreement:mean_balanced',
    'chainer_dcgan.agreement.conditional_agreement',
    'chainer_dcgan.agreement.steering_share',
    'chainer_dcgan.atomic',
    'chainer_dcgan.atomic:FolderLock',
    'chainer_dcgan.atomic:FolderLocked',
    'chainer_dcgan.atomic:atomic_save',
    'chainer_dcgan.atomic:atomic_write',
    'chainer_dcgan.cli',
    'chainer_dcgan.cli:above_one',
    'chainer_dcgan.cli:finite_float',
    'chainer_dcgan.cli:fraction',
    'chainer_dcgan.cli:non_negative_float',
    'chainer_dcgan.cli:non_negative_int',
    'chainer_dcgan.cli:output_file',
    'chainer_dcgan.cli:output_folder',
    'chainer_dcgan.cli:output_image',
    'chainer_dcgan.cli:port',
    'chainer_dcgan.cli:positive_float',
    'chainer_dcgan.cli:positive_int',
    'chainer_dcgan.cli:seed',
    'chainer_dcgan.cli:warn_nonfinite',
    'chainer_dcgan.datasets',
    'chainer_dcgan.datasets:ImageDataset',
    'chainer_dcgan.datasets:SyntheticFaces',
    'chainer_dcgan.datasets:TAGS',
    'chainer_dcgan.datasets:TagVocabularyError',
    'chainer_dcgan.datasets:TaggedDataset',
    'chainer_dcgan.datasets:UnreadableImageWarning',
    'chainer_dcgan.datasets:synthetic',
    'chainer_dcgan.datasets:write_dataset',
    'chainer_dcgan.datasets.TaggedDataset',
    'chainer_dcgan.datasets.images',
    'chainer_dcgan.datasets.images:list_images',
    'chainer_dcgan.datasets.images.ImageDataset',
    'chainer_dcgan.datasets.iterators',
    'chainer_dcgan.datasets.iterators:ResumableIterator',
    'chainer_dcgan.datasets.synthetic',
    'chainer_dcgan.datasets.synthetic:SyntheticFaces',
    'chainer_dcgan.datasets.synthetic:TAGS',
    'chainer_dcgan.datasets.synthetic:draw_face',
    'chainer_dcgan.datasets.synthetic:face_random_state',
    'chainer_dcgan.datasets.synthetic:face_tags',
    'chainer_dcgan.datasets.synthetic:write_dataset',
    'chainer_dcgan.datasets.tagged',
    'chainer_dcgan.datasets.tagged:tag_matrix',
    'chainer_dcgan.distributed',
    'chainer_dcgan.distributed:Context',
    'chainer_dcgan.distributed:create_context',
    'chainer_dcgan.distributed:resolve_device',
    'chainer_dcgan.export',
    'chainer_dcgan.export:ExportError',
    'chainer_dcgan.export:read_demo_manifest',
    'chainer_dcgan.export_conditional',
    'chainer_dcgan.export_conditional:build_conditional_onnx',
    'chainer_dcgan.export_conditional:export_conditional_demo',
    'chainer_dcgan.export_conditional:fold_conditional',
    'chainer_dcgan.export_conditional:run_conditional_onnx',
    'chainer_dcgan.extensions',
    'chainer_dcgan.extensions:GeneratorAverage',
    'chainer_dcgan.extensions.GeneratorAverage',
    'chainer_dcgan.extensions.conditional_grid',
    'chainer_dcgan.extensions.conditional_grid:grid_tag_sets',
    'chainer_dcgan.extensions.conditional_grid:legend_lines',
    'chainer_dcgan.extensions.ema',
    'chainer_dcgan.extensions.ema:batch_normalizations',
    'chainer_dcgan.extensions.ema:recompute_batch_statistics',
    'chainer_dcgan.extensions.fid',
    'chainer_dcgan.extensions.fid:FIDEvaluation',
    'chainer_dcgan.extensions.fid:add_fid_evaluation',
    'chainer_dcgan.extensions.sample_grid',
    'chainer_dcgan.extensions.statistics',
    'chainer_dcgan.faces',
    'chainer_dcgan.faces.crop_folder',
    'chainer_dcgan.functions',
    'chainer_dcgan.functions:stride2_conv',
    'chainer_dcgan.functions.batch_norm_act',
    'chainer_dcgan.functions.stride2_conv',
    'chainer_dcgan.hparams',
    'chainer_dcgan.images',
    'chainer_dcgan.images:is_image_file',
    'chainer_dcgan.images:read_image',
    'chainer_dcgan.images:save_animation',
    'chainer_dcgan.images:save_image',
    'chainer_dcgan.images:tile',
    'chainer_dcgan.images:to_array',
    'chainer_dcgan.images:to_image',
    'chainer_dcgan.images.to_image',
    'chainer_dcgan.inception',
    'chainer_dcgan.inception:FeatureExtractor',
    'chainer_dcgan.inception.FeatureExtractor',
    'chainer_dcgan.jsonio',
    'chainer_dcgan.links',
    'chainer_dcgan.manifest',
    'chainer_dcgan.manifest:ManifestError',
    'chainer_dcgan.manifest:ManifestWriter',
    'chainer_dcgan.manifest:read_manifest',
    'chainer_dcgan.metrics',
    'chainer_dcgan.metrics:held_out',
    'chainer_dcgan.metrics:select_examples',
    'chainer_dcgan.models',
    'chainer_dcgan.models:ConditionalGenerator',
    'chainer_dcgan.models:Discriminator',
    'chainer_dcgan.models:Generator',
    'chainer_dcgan.models:MODEL_CLASSES',
    'chainer_dcgan.models:ProjectionDiscriminator',
    'chainer_dcgan.models:UnknownTagError',
    'chainer_dcgan.models:generate',
    'chainer_dcgan.models:is_conditional',
    'chainer_dcgan.models:parse_tag_spec',
    'chainer_dcgan.models:resolve_tags',
    'chainer_dcgan.models:sample_z',
    'chainer_dcgan.models.ConditionalGenerator',
    'chainer_dcgan.models.ProjectionDiscriminator',
    'chainer_dcgan.models.UnknownTagError',
    'chainer_dcgan.models.conditional',
    'chainer_dcgan.models.faithful',
    'chainer_dcgan.models.faithful:architecture',
    'chainer_dcgan.models.faithful.architecture',
    'chainer_dcgan.pretrained',
    'chainer_dcgan.random_state',
    'chainer_dcgan.random_state:seeded_global',
    'chainer_dcgan.safebooru',
    'chainer_dcgan.safebooru:ApiError',
    'chainer_dcgan.safebooru:ChecksumMismatch',
    'chainer_dcgan.safebooru:FileTooLarge',
    'chainer_dcgan.safebooru:HTTPStatusError',
    'chainer_dcgan.safebooru:NotAnImage',
    'chainer_dcgan.safebooru:Post',
    'chainer_dcgan.safebooru:PostStore',
    'chainer_dcgan.safebooru:RateLimited',
    'chainer_dcgan.safebooru:RetriesExhausted',
    'chainer_dcgan.safebooru:ServerError',
    'chainer_dcgan.safebooru:StoreLocked',
    'chainer_dcgan.safebooru:UnsafePost',
    'chainer_dcgan.safebooru:UnsupportedType',
    'chainer_dcgan.safebooru:parse_posts',
    'chainer_dcgan.safebooru:read_posts',
    'chainer_dcgan.safebooru:scrape',
    'chainer_dcgan.safebooru_server',
    'chainer_dcgan.safebooru_server:DEEP_PAGING_REASON',
    'chainer_dcgan.safebooru_server:FakeSafebooru',
    'chainer_dcgan.safebooru_server:Fault',
    'chainer_dcgan.safebooru_server:ServedPost',
    'chainer_dcgan.safebooru_server:created_at',
    'chainer_dcgan.safebooru_server:posts_from_folder',
    'chainer_dcgan.safebooru_server:search',
    'chainer_dcgan.safebooru_server:synthetic_posts',
    'chainer_dcgan.safebooru_server.FakeSafebooru',
    'chainer_dcgan.serialization',
    'chainer_dcgan.serialization:ModelFileError',
    'chainer_dcgan.serialization:SafeNpz',
    'chainer_dcgan.serialization:load_generator',
    'chainer_dcgan.serialization:load_model',
    'chainer_dcgan.serialization:load_npz_into',
    'chainer_dcgan.serialization:read_meta',
    'chainer_dcgan.serialization:save_model',
    'chainer_dcgan.serialization.load_model',
    'chainer_dcgan.snapshots',
    'chainer_dcgan.snapshots:CONFIG_NAME',
    'chainer_dcgan.snapshots:RunConfig',
    'chainer_dcgan.snapshots:config_differences',
    'chainer_dcgan.snapshots:read_snapshot',
    'chainer_dcgan.statistics',
    'chainer_dcgan.statistics:statistics_distance',
    'chainer_dcgan.tagging',
    'chainer_dcgan.tagging:TagVector',
    'chainer_dcgan.tagging:TagVectorFileError',
    'chainer_dcgan.tagging:TaggedDatasetError',
    'chainer_dcgan.tagging:evaluate_classifier',
    'chainer_dcgan.tagging:load_classifier',
    'chainer_dcgan.tagging:read_tag_vectors',
    'chainer_dcgan.tagging:train_tag_classifier',
    'chainer_dcgan.tagging:write_tag_vectors',
    'chainer_dcgan.tagging.tag_vectors',
    'chainer_dcgan.training',
    'chainer_dcgan.training:build_trainer',
    'chainer_dcgan.training:make_optimizer',
    'chainer_dcgan.training:newest_snapshot',
    'chainer_dcgan.training:resume',
    'chainer_dcgan.training:seeded_models',
    'chainer_dcgan.updater',
    'chainer_dcgan.updater:ConditionalUpdater',
    'chainer_dcgan.updater:DCGANUpdater',
    'chainer_dcgan.updater.ConditionalUpdater',
    'chainer_dcgan.updater.DCGANUpdater',
    'chainer_dcgan.web_demo',
    'chainer_dcgan.web_demo:DemoServer',
    'chainer_dcgan.web_demo:WebDemoError',
    'chainer_dcgan.web_demo:find_chromium',
    'chainer_dcgan.web_demo:launch_chromium',
    'chainer_dcgan.web_demo:screenshot',
    'chainer_dcgan.web_demo.DemoServer',
    'chainer_dcgan.zspace',
    'chainer_dcgan.zspace:generate',
    'chainer_dcgan.zspace:sample_z',
    'chainer_dcgan.zspace.compose',
    'chainer_dcgan.zspace.generate',
]


def _resolve(dotted):
    """The module or attribute ``dotted`` names: the longest importable prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("spec", OLD_IMPORTS)
def test_an_old_import_still_works_and_is_the_new_object(spec):
    dotted, _, name = spec.partition(":")
    old = _resolve(dotted)
    new = _resolve(_moved.new_name(dotted))
    assert old is new
    if name:  # as ``from dotted import name`` does it: an attribute, else a submodule
        namespace = {}
        exec("from {} import {} as value".format(dotted, name), namespace)
        assert namespace["value"] is _resolve(_moved.new_name(dotted + "." + name))


def test_every_moved_module_is_one_module_under_two_names():
    for old, new in _moved.MOVED.items():
        module = importlib.import_module(old)
        assert module is importlib.import_module(new)
        assert module.__name__ == new and module.__spec__.name == new  # it ran once, under its new name
        assert sys.modules[old] is sys.modules[new]
        assert getattr(chainer_dcgan, old.split(".", 1)[1]) is module


def test_old_names_in_a_fresh_interpreter_before_the_new_ones():
    """Imported first by an old name, a module is not run twice, and ``chainer_dcgan.X`` attribute
    access works without importing X (as ``chainer_dcgan.serialization.load_generator`` did)."""
    code = ("import chainer_dcgan, sys\n"
            "load = chainer_dcgan.serialization.load_generator\n"
            "from chainer_dcgan.extensions.ema import GeneratorAverage\n"
            "import chainer_dcgan.models.serialization as new\n"
            "import chainer_dcgan.training.extensions.ema as ema\n"
            "assert load is new.load_generator and GeneratorAverage is ema.GeneratorAverage\n"
            "assert sorted(n for n, m in sys.modules.items() if m is new) == "
            "['chainer_dcgan.models.serialization', 'chainer_dcgan.serialization']\n"
            "print(load('default').z_dim)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["100"]


def test_an_unknown_name_is_still_an_error():
    with pytest.raises(ImportError):
        importlib.import_module("chainer_dcgan.no_such_module")
    with pytest.raises(ImportError):
        importlib.import_module("chainer_dcgan.extensions.no_such_module")
    with pytest.raises(AttributeError):
        chainer_dcgan.no_such_module
