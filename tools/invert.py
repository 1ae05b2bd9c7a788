#!/usr/bin/env python
"""Find the z that draws your face, then move it along the tag vectors (inversion).

Each IMAGE is a face crop (square, or within 25% of square: the middle square is used), resized to
the model's size; with --detect, a whole illustration, whose faces the project's cropper cuts out
(lbpcascade_animeface). For each face: the encoder shipped with the model (or --encoder) guesses
z, then --steps Adam steps on z through the generator refine it (--steps 0: the encoder alone).
Written to --out, per face NAME (the file's stem, plus _faceK with --detect):

  NAME.npy             z, float32 (1, 100), for tools/variations.py --z and the other tools
  NAME.png             the reconstruction G(z)
  NAME_sheet.png       original | encoder alone | refined | z moved along each --move tag (+--strength)
  summary.json         per face: pixel error (grey levels, mean absolute) before and after refinement,
                       seconds, and the files written

Example:
  python tools/invert.py my_face.png --model default --out inverted/
  python tools/invert.py illustration.jpg --detect --move blonde_hair,smile --out inverted/
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan import zspace  # noqa: E402  (imports the chainer shims first)
from chainer_dcgan.cli import (add_device_arguments, add_model_argument, device_from_args, finite_float,  # noqa: E402
                               generator_from_args, non_negative_int, output_folder, positive_float, print_error, run_command,
                               seed)
from chainer_dcgan.models import pretrained, resolve_tags  # noqa: E402
from chainer_dcgan.models.serialization import ModelFileError  # noqa: E402
from chainer_dcgan.utils import limits  # noqa: E402
from chainer_dcgan.utils.atomic import atomic_write  # noqa: E402
from chainer_dcgan.utils.images import read_image, save_image, tile  # noqa: E402
from chainer_dcgan.zspace import inversion, tagging  # noqa: E402

import numpy  # noqa: E402,I100
from PIL import Image, UnidentifiedImageError  # noqa: E402

#: Colour modes read (converted to RGB); others (32-bit float "F", ...) are refused by name.
MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr",
         "I", "I;16", "I;16B", "I;16L", "I;16N")
MIN_SIDE = 24  # the cascade's window: smaller is no face to redraw
SQUARENESS = 1.25
DEFAULT_MOVES = ("blonde_hair", "pink_hair", "glasses", "smile")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="face crops (PNG, JPEG, ...), or illustrations with --detect")
    add_model_argument(p, "--model", default=pretrained.DEFAULT,
                       help="generator weights (.npz, the 2015 original's .h5) or a shipped model's name "
                            "(default: {})".format(pretrained.DEFAULT))
    p.add_argument("--encoder", default=None,
                   help="encoder file from tools/train_encoder.py (default: the one shipped with --model; "
                        "'none': start from the best of --candidates random z)")
    p.add_argument("--out", type=output_folder, required=True, help="folder for the files (created)")
    p.add_argument("--detect", action="store_true", help="find the faces in each image with the cropper first")
    p.add_argument("--cascade", default=None, help="with --detect: lbpcascade_animeface.xml (default: the cached one)")
    p.add_argument("--margin", type=finite_float, default=0.0,
                   help="with --detect: context added on each side of a face, fraction of its side (default 0)")
    p.add_argument("--steps", type=non_negative_int, default=100,
                   help="refinement steps on z (default 100; 0: the encoder alone)")
    p.add_argument("--lr", type=positive_float, default=0.05, help="refinement's Adam step size (default 0.05)")
    p.add_argument("--tags", default=None,
                   help="tag vectors (JSON from tools/tag_vectors.py; default: those shipped with --model)")
    p.add_argument("--move", default=None,
                   help="comma-separated tags of --tags to move each z along on the sheet (default: "
                        + ", ".join(DEFAULT_MOVES) + ", those the file has)")
    p.add_argument("--strength", type=finite_float, default=1.0, help="slider value of each move (default 1)")
    p.add_argument("--candidates", type=non_negative_int, default=256,
                   help="without an encoder: random z tried for the start (default 256)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the random start without an encoder (default 0)")
    p.add_argument("--y", default=None,
                   help="for a conditional model: the faces' tags, e.g. \"long_hair,blue_eyes=0.5\" (given, not inferred)")
    add_device_arguments(p, "invert")
    return p.parse_args(argv)


def read_face_image(path):
    """The RGB ``uint8 (H, W, 3)`` pixels of ``path``; ValueError naming it when it is no usable image."""
    if not os.path.isfile(path):
        raise ValueError("{}: no such file".format(path))
    try:
        with Image.open(path) as img:
            if img.mode not in MODES:
                raise ValueError("{}: an image of mode {} (e.g. 32-bit float); save it as 8-bit RGB".format(
                    path, img.mode))
            if getattr(img, "n_frames", 1) > 1:
                raise ValueError("{}: an animation of {} frames; give one still image".format(path, img.n_frames))
        image = read_image(path)
    except Image.DecompressionBombError as e:
        raise ValueError("{}: refused, too many pixels for a face ({})".format(path, e)) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError("{}: not an image PIL can read ({})".format(path, type(e).__name__)) from None
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ValueError("{}: {}x{} pixels is too small for a face (at least {} a side)".format(
            path, width, height, MIN_SIDE))
    return image


def square_crop(path, image, size):
    """The middle square of a nearly square ``image``, resized to ``size``."""
    height, width = image.shape[:2]
    if max(height, width) > SQUARENESS * min(height, width):
        raise ValueError("{}: {}x{} pixels is not a face crop (sides differ by more than {:.0%}); crop it "
                         "square or give --detect".format(path, width, height, SQUARENESS - 1))
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(image[top:top + side, left:left + side])
    return numpy.asarray(square.resize((size, size), Image.BOX) if side != size else square, dtype=numpy.uint8)


def load_faces(args, size):
    """``[(name, uint8 (size, size, 3)), ...]`` for every input, in order; ValueError on the first bad one."""
    cropper = None
    if args.detect:
        from chainer_dcgan.collection import faces
        try:
            cropper = faces.FaceCropper(args.cascade, size=size, margin=args.margin, min_face=faces.WINDOW)
        except faces.CascadeNotFound as e:
            raise ValueError("--cascade: {}".format(e)) from None
    out, names = [], set()
    for path in args.images:
        image = read_face_image(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        if cropper is None:
            found = [(stem, square_crop(path, image, size))]
        else:
            crops = cropper(image)
            if not crops:
                raise ValueError("{}: the cropper found no face (try a crop of the face without --detect)".format(path))
            found = [("{}_face{}".format(stem, k), crop) for k, (_, _, crop) in enumerate(crops)]
        for name, face in found:
            base, k = name, 1
            while name in names:  # two inputs with one stem
                k += 1
                name = "{}_{}".format(base, k)
            names.add(name)
            out.append((name, face))
    return out


def _moves(args, z_dim):
    """``(names, matrix, tags to move along)``, or None when there are no tag vectors to move along."""
    source = args.tags or pretrained.companion(args.model, pretrained.TAGS)
    if source is None:
        if args.move:
            raise ValueError("--move: {} comes with no tag vectors; give them with --tags FILE".format(args.model))
        return None
    vectors = tagging.read_tag_vectors(source, z_dim)
    names, matrix = tagging.stack_vectors(vectors)
    if args.move is None:
        wanted = [t for t in DEFAULT_MOVES if t in names] or names[:4]
    else:
        wanted = [t.strip() for t in args.move.split(",") if t.strip()]
        unknown = [t for t in wanted if t not in names]
        if unknown:
            raise ValueError("--move: unknown tag(s) {} (the tag vectors have: {})".format(
                ", ".join(unknown), ", ".join(names)))
    return names, matrix, wanted


def main(argv=None):
    args = parse_args(argv)
    try:
        gen = generator_from_args(args, device_from_args(args))
        limits.check_count("candidates", args.candidates, 2 * 3 * gen.size ** 2 * 4,
                           "random faces of {} px held to pick a start".format(gen.size))
        y = resolve_tags(gen, args.y)
        encoder = None
        if (args.encoder or "").lower() != "none":
            path = args.encoder or pretrained.companion(args.model, pretrained.ENCODER)
            if path is None:
                raise ValueError("--model {} comes with no encoder: give --encoder FILE (tools/train_encoder.py) "
                                 "or --encoder none".format(args.model))
            encoder = inversion.load_encoder(path, gen)
            encoder.to_device(gen.device)
        moves = _moves(args, gen.z_dim)
        faces = load_faces(args, gen.size)
        summary = {"model": args.model, "encoder": args.encoder or ("none" if encoder is None else args.model),
                   "steps": args.steps, "lr": args.lr, "faces": []}
        for name, face in faces:
            start = time.time()
            found = inversion.invert(gen, face[None], encoder, steps=args.steps, lr=args.lr, y=y, patience=None,
                                     candidates=max(1, args.candidates), seed=args.seed)
            seconds = time.time() - start
            target = inversion.as_arrays(face[None], gen.size)
            first = zspace.generate(gen, found.start, y=y)
            before = float(inversion.pixel_error(first, target)[0])
            after = float(inversion.pixel_error(found.reconstructions, target)[0])
            cells = [target[0], first[0], found.reconstructions[0]]
            moved = []
            if moves is not None:
                names, matrix, wanted = moves
                for tag in wanted:
                    sliders = numpy.zeros(len(names))
                    sliders[names.index(tag)] = args.strength
                    moved.append(zspace.compose(found.z[0], 1.0, sliders, matrix))
                if moved:
                    cells.extend(zspace.generate(gen, numpy.stack(moved), y=y))
            files = {"z": name + ".npy", "reconstruction": name + ".png", "sheet": name + "_sheet.png"}
            zspace.write_z(os.path.join(args.out, files["z"]), found.z)
            save_image(os.path.join(args.out, files["reconstruction"]), tile(found.reconstructions, 1, 1))
            save_image(os.path.join(args.out, files["sheet"]), tile(numpy.stack(cells), 1, len(cells), pad=2))
            record = {"name": name, "pixel_error_start": round(before, 3), "pixel_error": round(after, 3),
                      "seconds": round(seconds, 3), "files": files,
                      "sheet": ["original", "start", "refined"] + (
                          ["{}+{:g}".format(t, args.strength) for t in moves[2]] if moves and moved else [])}
            summary["faces"].append(record)
            print("{}: pixel error {:.1f} -> {:.1f} grey levels in {:.1f} s; wrote {}".format(
                name, before, after, seconds, ", ".join(files.values())), flush=True)
        with atomic_write(os.path.join(args.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")
    except (ModelFileError, tagging.TagVectorFileError, ValueError, OSError) as e:
        print_error(e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
