"""
Tutorial 2: handwritten digits
==============================

Softmax regression and the network of the lecture 2-7 notes (784-128-64-10) trained on
handwritten digits: what each model learns, where it goes wrong, how training progresses, and a
photo of a digit classified.

**Which data.** When the site is built with ``SOFTMAXREG_DATA`` naming a folder of MNIST's IDX
files (60,000 training and 10,000 test images of 28 × 28 pixels), this page uses MNIST. Otherwise
it uses scikit-learn's bundled 8 × 8 digits (1,797 images, no download), holding out a stratified
quarter as the test set, and the network is 64-128-64-10: the same code, a smaller input. The
first output below says which data this build used. To build the MNIST version (see
:doc:`../building`)::

    SOFTMAXREG_DATA=/path/to/mnist python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.metrics import ConfusionMatrixDisplay, log_loss
from sklearn.model_selection import train_test_split

from softmaxreg import SoftmaxNetwork, SoftmaxRegression
from softmaxreg.cli import main
from softmaxreg.images import digit_format, image_to_digit

mnist_folder = os.environ.get("SOFTMAXREG_DATA")
if mnist_folder:
    # sphinx_gallery_start_ignore
    try:  # softmaxreg.io is the home of the loaders from 0.2 on
        from softmaxreg.io import load_mnist
    except ImportError:
        from softmaxreg.datasets import load_mnist
    # sphinx_gallery_end_ignore
    mnist = load_mnist(mnist_folder)
    X_train = mnist.X.astype(np.float32) / 255  # pixels 0..255 -> [0, 1]
    X_test = mnist.X_test.astype(np.float32) / 255
    y_train, y_test = mnist.y, mnist.y_test
    image_shape, epochs, data_name = (28, 28), 15, "MNIST"
else:
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)  # counts 0..16 -> [0, 1]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    image_shape, epochs, data_name = (8, 8), 60, "scikit-learn's 8x8 digits"

classes = np.unique(y_train)
print(f"data: {data_name}; {X_train.shape[0]} training and {X_test.shape[0]} test images "
      f"of {image_shape[0]}x{image_shape[1]} pixels, {len(classes)} classes")

# %%
# A few training images, as the models see them: one row of ``X`` per image, the pixels read
# row by row.

fig, axes = plt.subplots(2, 10, figsize=(10, 2.3))
for ax, i in zip(axes.ravel(), range(20)):
    ax.imshow(X_train[i].reshape(image_shape), cmap="gray_r")
    ax.set_title(str(y_train[i]), fontsize=9)
    ax.axis("off")
fig.tight_layout()
plt.show()

# %%
# Softmax regression
# ------------------
#
# One weight vector **w**\ :sub:`k` per class and a score ``z_k = w_k · x + b_k``: the model of
# Jacob Whitehill's MNIST demo. :class:`~softmaxreg.SoftmaxRegression` minimises scikit-learn
# ``LogisticRegression``'s objective ``C Σ_i CE_i + ½‖W‖²`` with L-BFGS.

start = time.perf_counter()
softmax_model = SoftmaxRegression(C=1.0).fit(X_train, y_train)
seconds = time.perf_counter() - start
print(f"fitted in {seconds:.1f} s ({softmax_model.n_iter_[0]} L-BFGS iterations); "
      f"{softmax_model.coef_.size + softmax_model.intercept_.size} parameters")
print(f"test accuracy {softmax_model.score(X_test, y_test):.4f}, "
      f"test log loss {log_loss(y_test, softmax_model.predict_proba(X_test)):.4f}")

# %%
# **Weight templates.** Each row **w**\ :sub:`k` of ``coef_`` has one weight per pixel, so it can
# be drawn as an image: red pixels raise the score of class *k* when they hold ink, blue ones
# lower it. The model is a set of ten templates, and a digit goes to the class whose template
# it matches best.

W = softmax_model.coef_  # (K, d)
limit = np.abs(W).max()
fig, axes = plt.subplots(2, 5, figsize=(10, 4.4))
for k, ax in enumerate(axes.ravel()):
    image = ax.imshow(W[k].reshape(image_shape), cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(f"class {classes[k]}")
    ax.axis("off")
fig.colorbar(image, ax=axes, shrink=0.8, label="weight")
plt.show()

# %%
# The network
# -----------
#
# The lecture 2-7 notes end with a network of two hidden layers: *d*\ [0] inputs, 128 and 64
# ReLU units, 10 softmax outputs. :class:`~softmaxreg.SoftmaxNetwork` trains it with Adam on
# minibatches of 128 rows, the learning rate following a cosine from 1e-3 down to 0 over the
# epochs. ``fit`` would run all the epochs at once; here ``partial_fit`` runs one epoch per
# call, so that we can measure the test set after each.

network = SoftmaxNetwork(hidden_layer_sizes=(128, 64), learning_rate="cosine", max_iter=epochs,
                         random_state=0)
test_loss, test_accuracy = [], []
start = time.perf_counter()
for _ in range(epochs):
    network.partial_fit(X_train, y_train, classes=classes)
    P = network.predict_proba(X_test)
    test_loss.append(log_loss(y_test, P, labels=classes))
    test_accuracy.append(np.mean(classes[P.argmax(axis=1)] == y_test))
seconds = time.perf_counter() - start
sizes = [X_train.shape[1], *network.hidden_layer_sizes, len(classes)]
n_parameters = sum(W.size + b.size for W, b in zip(network.coefs_, network.intercepts_))
print(f"network {'-'.join(map(str, sizes))}: {n_parameters} parameters, {epochs} epochs "
      f"in {seconds:.1f} s (test set measured after each)")
print(f"test accuracy {test_accuracy[-1]:.4f}, test log loss {test_loss[-1]:.4f}")

# %%
# **Learning curves.** ``history_`` holds the training loss and accuracy of every epoch
# (averaged over the epoch's minibatches, as the weights changed); the test curves are the
# measurements above. The gap between them is how much the network fits its training images
# better than new ones.

history = network.history_
epoch_numbers = np.arange(1, epochs + 1)
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
ax_loss.plot(epoch_numbers, history.loss, label="training")
ax_loss.plot(epoch_numbers, test_loss, label="test")
ax_loss.set_ylabel("cross-entropy")
ax_loss.set_yscale("log")
ax_acc.plot(epoch_numbers, history.accuracy, label="training")
ax_acc.plot(epoch_numbers, test_accuracy, label="test")
ax_acc.set_ylabel("accuracy")
for ax in (ax_loss, ax_acc):
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()
plt.show()

# %%
# **Confusion matrix** of the network on the test set: row *i*, column *j* counts the test
# images of class *i* that it classified as *j*; the diagonal holds the correct ones.

predicted = network.predict(X_test)
fig, ax = plt.subplots(figsize=(6.4, 5.6))
ConfusionMatrixDisplay.from_predictions(y_test, predicted, ax=ax, colorbar=False, cmap="Blues")
ax.set_title(f"network on the {len(y_test)} test images")
plt.show()

# %%
# **The most confident mistakes.** The test images the network got wrong, ordered by the
# probability it gave to its wrong answer. Some are digits a person would hesitate over too.

P = network.predict_proba(X_test)
wrong = np.flatnonzero(predicted != y_test)
worst = wrong[np.argsort(-P[wrong].max(axis=1))][:15]
print(f"{len(wrong)} of {len(y_test)} test images misclassified; showing the {len(worst)} "
      "most confident")
rows = max(1, -(-len(worst) // 5))
fig, axes = plt.subplots(rows, 5, figsize=(10, 2.25 * rows), squeeze=False)
for ax in axes.ravel():
    ax.axis("off")
for ax, i in zip(axes.ravel(), worst):
    ax.imshow(X_test[i].reshape(image_shape), cmap="gray_r")
    ax.set_title(f"true {y_test[i]}, predicted {predicted[i]}\np = {P[i].max():.3f}", fontsize=9)
fig.tight_layout()
plt.show()

# %%
# A photo of a digit
# ------------------
#
# Real pictures of digits are large, dark ink on light paper, unevenly lit and noisy. We make
# one from a test image the models have never trained on: give it a margin of paper, upscale it
# to 280 × 280 pixels, invert it, light it from one side and add sensor noise, and save it as a
# PNG file.

index = int(np.flatnonzero(y_test == classes[7 % len(classes)])[0])
digit = (X_test[index].reshape(image_shape) * 255).astype(np.uint8)
digit = np.pad(digit, image_shape[0] // 2)  # the paper around the digit
big = np.asarray(Image.fromarray(digit).resize((280, 280), Image.Resampling.BICUBIC), float)
rng = np.random.default_rng(0)
lighting = np.linspace(235, 185, 280)[None, :]  # paper brighter on the left
photo = lighting - 0.75 * big + rng.normal(scale=12, size=big.shape)
folder = Path(tempfile.mkdtemp())
photo_path = folder / "photo.png"
Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(photo_path)
print(f"{photo_path.name}: {Image.open(photo_path).size[0]}x{Image.open(photo_path).size[1]} "
      f"pixels, made from test image {index} (a {y_test[index]})")

# %%
# To classify it, we bring it back to the form of the training images with
# :func:`softmaxreg.images.image_to_digit`, the function ``softmaxreg predict`` applies to
# pictures. It reads the picture in greyscale (turned upright by its EXIF orientation,
# transparent parts as white paper), finds the ink by removing the paper and its uneven
# lighting, whether the ink is dark on light or light on dark, keeps the strokes that make the
# digit and crops to them, widens the strokes of a thin pen, and resizes the digit into the
# training images' format: for MNIST, into a 20 × 20 box centred by its centre of mass in
# 28 × 28; for scikit-learn's digits, a 32 × 32 bitmap counted in 4 × 4 blocks, 8 × 8. Ink is
# light on black, as in the training images. :func:`~softmaxreg.images.digit_format` gives the
# format for a model's number of inputs, and the range of its training features: here 0..1,
# as we divided the pixels above.

shape, max_value = digit_format(X_train.shape[1], image_shape, np.abs(X_train).max())
x = image_to_digit(photo_path, shape, max_value).reshape(1, -1)
print(f"the models' input: {shape[0]}x{shape[1]} pixels in 0..{max_value:g}")
for name, model in (("softmax regression", softmax_model), ("network", network)):
    p = model.predict_proba(x)[0]
    top = np.argsort(-p)[:3]
    print(f"{name:>18}: " + "  ".join(f"{classes[k]} ({p[k]:.3f})" for k in top))

fig, (ax_photo, ax_input) = plt.subplots(1, 2, figsize=(7, 3.6))
ax_photo.imshow(Image.open(photo_path), cmap="gray", vmin=0, vmax=255)
ax_photo.set_title("photo.png")
ax_input.imshow(x.reshape(image_shape), cmap="gray_r")
ax_input.set_title(f"the model's input, {image_shape[0]}x{image_shape[1]}")
for ax in (ax_photo, ax_input):
    ax.axis("off")
fig.tight_layout()
plt.show()

# %%
# From the command line, ``softmaxreg predict`` does the same with a model file: the format
# follows from the model's number of inputs, the file records the range of the features it was
# trained on, and the picture goes through the same :func:`~softmaxreg.images.image_to_digit`
# (see :doc:`../guide/cli`). Saved and asked from the command line, the softmax regression
# gives the probabilities above.

softmax_model.save(folder / "softmax.npz")
here = Path.cwd()
os.chdir(folder)  # so that the command prints the file's name alone
try:
    main(["predict", "softmax.npz", "photo.png", "--top-k", "3"])
finally:
    os.chdir(here)
