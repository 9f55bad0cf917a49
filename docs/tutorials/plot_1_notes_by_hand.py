"""
Tutorial 1: the notes, by hand
==============================

The worked examples of the lecture notes, reproduced with softmaxreg step by step. Every number
on this page is printed by the code above it, when the site is built.

We go from one softmax to a trained network:

1. the softmax of the scores z = [5, 2, −1, 3];
2. the three-class example x = [−1, 1] with the weight vectors w₁, w₂, w₃;
3. one-hot labels and the cross-entropy of that example;
4. one forward and one backward pass through a tiny network, every array shown, and the
   gradient checked against finite differences;
5. K = 2: softmax regression and logistic regression give the same probabilities;
6. a two-dimensional problem, with the decision regions of softmax regression and of a network.

Rows are examples throughout, as in the notes: ``X`` is *n × d*, ``W[l]`` is *d[l] × d[l−1]*,
``Z[l] = A[l−1] W[l]ᵀ + b[l]ᵀ``.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import softmaxreg
from softmaxreg import (
    Network,
    SoftmaxNetwork,
    SoftmaxRegression,
    binary_cross_entropy,
    cross_entropy,
    cross_entropy_grad,
    gradcheck,
    logsumexp,
    one_hot,
    sigmoid,
    softmax,
)

np.set_printoptions(precision=3, suppress=True, floatmode="fixed")
print("softmaxreg", softmaxreg.__version__)

# %%
# 1. The softmax of z = [5, 2, −1, 3]
# -----------------------------------
#
# Softmax turns *K* scores into *K* probabilities,
#
# .. math:: \hat y_k = \frac{e^{z_k}}{\sum_{j=1}^{K} e^{z_j}},
#
# each positive, summing to 1, in the order of the scores. The notes ("Softmax Regression",
# Deep Learning on Medium) give z = [5, 2, −1, 3] → [0.842, 0.042, 0.002, 0.114].
# :func:`softmaxreg.softmax` works on a vector or on the rows of a matrix.

z = np.array([5.0, 2.0, -1.0, 3.0])
y_hat = softmax(z)
print("z          =", z)
print("softmax(z) =", y_hat, f"  sum = {y_hat.sum():.6f}")
print("hardmax(z) =", one_hot([z.argmax()], n_classes=4)[0])

# %%
# *Hardmax* puts all the weight on the largest score; softmax is its smooth version, and
# log-sum-exp is the smooth version of the maximum itself (Lei Zhao's note):
# ``log Σ_k e^{z_k}`` is a little above ``max z``. Because softmax only depends on the
# differences between scores, the library subtracts the largest score before exponentiating:
# scores in the thousands give the same probabilities instead of overflowing.

print("logsumexp(z) =", f"{logsumexp(z):.3f}", "  max(z) =", z.max())
print("softmax(z + 1000) =", softmax(z + 1000))
with np.errstate(over="ignore"):
    print("exp(z + 1000) without the shift =", np.exp(z + 1000))

# %%
# 2. The three-class example
# --------------------------
#
# Jacob Whitehill's notes (CS 453X, class 8) take *m* = 2 features and *c* = 3 classes:
#
# .. math::
#
#    x = \begin{bmatrix}-1\\ 1\end{bmatrix},\quad
#    w^{(1)} = \begin{bmatrix}-2.5\\ -1\end{bmatrix},\quad
#    w^{(2)} = \begin{bmatrix}1\\ 2\end{bmatrix},\quad
#    w^{(3)} = \begin{bmatrix}1\\ 0\end{bmatrix},\qquad z_k = x^\top w^{(k)}.
#
# In softmaxreg (as in the lecture 2-7 notes) the weight vectors are the *rows* of
# ``W`` (*K × d*), and ``x`` is one row of ``X``. Softmax regression is a
# :class:`~softmaxreg.Network` with no hidden layer: layer sizes (d, K) = (2, 3). We write the
# notes' weights into it (intercepts 0) and ask it for the scores and the probabilities.

x = np.array([[-1.0, 1.0]])  # one example, (n, d) = (1, 2)
W = np.array([[-2.5, -1.0], [1.0, 2.0], [1.0, 0.0]])  # rows w1, w2, w3: (K, d) = (3, 2)

net = Network((2, 3))  # d = 2 inputs, K = 3 softmax units
net.W[0][...] = W  # W[1] of the notes (the list is 0-based)
net.b[0][...] = 0.0

z = net.decision_function(x)  # Z = X Wᵀ + bᵀ
print("z     =", z[0])
print("y_hat =", net.predict_proba(x)[0])
print("the same by hand, softmax(x Wᵀ) =", softmax(x @ W.T)[0])

# %%
# z = [1.5, 1, −1] and ŷ = [.592, .359, .049], as on the slide: class 1 has the highest
# estimated probability.
#
# 3. One-hot labels and the cross-entropy
# ---------------------------------------
#
# A label *y* ∈ {0, …, K − 1} becomes the one-hot vector with a 1 in slot *y*. The notes'
# example of three examples labelled 0, 1, 0 (two classes):

print(one_hot([0, 1, 0]))

# %%
# The cross-entropy of one example is minus the log of the probability given to its true
# class, ``CE = −Σ_k y_k log ŷ_k = −log ŷ_y``. For the three-class example, whichever class is
# the true one (0-based labels 0, 1, 2 for the notes' classes 1, 2, 3):

for label in range(3):
    Y = one_hot([label], n_classes=3)
    ce = cross_entropy(z, [label])
    p_true = net.predict_proba(x)[0, label]
    print(f"true class {label + 1}: Y = {Y[0]}, CE = {ce:.3f} = -log {p_true:.3f}")

# %%
# :func:`~softmaxreg.cross_entropy` takes the scores (logits) ``Z``, not the probabilities:
# ``−log softmax(z)_y = logsumexp(z) − z_y`` never takes the log of a probability that has
# rounded to 0. It is the **mean** over rows (the cost *J* of the lecture 2-7 notes); the
# CS 453X slide writes the **sum** f_CE. For the slide's two-class predictions ŷ = [.93, .07],
# [.4, .6], [.99, .01] of the labels 0, 1, 0 (log-probabilities are valid logits):

P = np.array([[0.93, 0.07], [0.4, 0.6], [0.99, 0.01]])
labels = np.array([0, 1, 0])
J = cross_entropy(np.log(P), labels)
by_hand = -np.log([0.93, 0.6, 0.99]).sum()
print(f"mean J = {J:.4f};  sum f_CE = n J = {3 * J:.4f};  by hand: {by_hand:.4f}")

# %%
# The gradient of the mean cross-entropy at the logits is ``(Ŷ − Y)/n``, the result every
# note arrives at (Lei Zhao: ``softmax(o) − y``). For the three-class example with true class 1,
# against a central difference on each score:

g = cross_entropy_grad(z, [0])
h = 1e-6
numeric = [
    (cross_entropy(z + h * np.eye(3)[k], [0]) - cross_entropy(z - h * np.eye(3)[k], [0])) / (2 * h)
    for k in range(3)
]
print("Ŷ − Y                  =", net.predict_proba(x)[0] - one_hot([0], 3)[0])
print("cross_entropy_grad     =", g[0])
print("central differences    =", np.array(numeric))

# %%
# 4. One forward and one backward pass through a tiny network
# -----------------------------------------------------------
#
# Now a network with one hidden layer: *d*\ [0] = 2 inputs, *d*\ [1] = 3 tanh units,
# *d*\ [2] = *K* = 3 softmax outputs, on *n* = 4 examples (the notes' *x* is the first).
# :meth:`~softmaxreg.Network.initialize` draws Glorot-uniform weights for tanh; we give the
# intercepts small values too, so that nothing on this page is zero by accident.

X = np.array([[-1.0, 1.0], [0.5, 2.0], [2.0, -1.0], [-0.5, -1.5]])  # A[0] = X, (n, d[0]) = (4, 2)
y = np.array([0, 1, 2, 1])  # labels, (n,)
n, K = len(y), 3
Y = one_hot(y, K)

tiny = Network((2, 3, 3), activation="tanh").initialize(random_state=0)
tiny.b[0][...] = [0.1, -0.2, 0.05]
tiny.b[1][...] = [0.0, 0.1, -0.1]
W1, b1, W2, b2 = tiny.W[0], tiny.b[0], tiny.W[1], tiny.b[1]
print("W[1] (3, 2) =\n", W1, "\nb[1] =", b1)
print("W[2] (3, 3) =\n", W2, "\nb[2] =", b2)

# %%
# **Forward propagation** (lecture 2-7): ``A[0] = X``; for each layer
# ``Z[l] = A[l−1] W[l]ᵀ + b[l]ᵀ`` and ``A[l] = σ[l](Z[l])``, with σ = tanh in the hidden
# layer and softmax at the output; then the cost ``J = −(1/n) Σ_i Σ_k y_ik log a_ik[2]``.

A0 = X
Z1 = A0 @ W1.T + b1  # (4, 2) @ (2, 3) -> (4, 3)
A1 = np.tanh(Z1)
Z2 = A1 @ W2.T + b2  # (4, 3) @ (3, 3) -> (4, 3)
A2 = softmax(Z2)  # Ŷ
J = -(Y * np.log(A2)).sum() / n
print("Z[1] =\n", Z1, "\nA[1] = tanh(Z[1]) =\n", A1)
print("Z[2] =\n", Z2, "\nA[2] = softmax(Z[2]) =\n", A2)
print(f"J = {J:.6f}")

# %%
# The library computes the same logits and probabilities:

print("Network.forward(X) equals Z[2]:      ", np.allclose(tiny.forward(X, keep=False), Z2))
print("Network.predict_proba(X) equals A[2]:", np.allclose(tiny.predict_proba(X), A2))

# %%
# **Backward propagation.** The notes start from ``dA[L] = ∂J/∂A[L]``, whose entries are
# ``−y_ik / (n a_ik)`` for the mean cost, and pass it through the softmax (whose Jacobian mixes
# the *K* outputs of a row: ``dz_i = a_i ∘ (da_i − (da_i · a_i))``). The result is the
# simple ``dZ[2] = (A[2] − Y)/n`` of section 3.

dA2 = -Y / (n * A2)
dZ2 = A2 * (dA2 - (dA2 * A2).sum(axis=1, keepdims=True))
print("dA[2] =\n", dA2)
print("dZ[2] =\n", dZ2)
print("(A[2] − Y)/n equals dZ[2]:", np.allclose((A2 - Y) / n, dZ2),
      "  cross_entropy_grad equals it too:", np.allclose(cross_entropy_grad(Z2, y), dZ2))

# %%
# Then, for each layer from the last to the first (lecture 2-7, backpropagation):
#
# .. math::
#
#    dZ^{[l]} = dA^{[l]} \circ \sigma^{[l]\prime}(Z^{[l]}),\quad
#    dW^{[l]} = (dZ^{[l]})^\top A^{[l-1]},\quad
#    db^{[l]} = (dZ^{[l]})^\top \mathbf 1,\quad
#    dA^{[l-1]} = dZ^{[l]} W^{[l]}.
#
# (The slide prints ``dW = dZᵀ dA[l−1]``; the derivative is ``dZᵀ A[l−1]``, as the
# finite-difference check below confirms.) For tanh, σ′(Z) = 1 − tanh²(Z) = 1 − A².

dW2 = dZ2.T @ A1  # (3, 4) @ (4, 3) -> (3, 3)
db2 = dZ2.sum(axis=0)
dA1 = dZ2 @ W2  # (4, 3) @ (3, 3) -> (4, 3): dA_prev of layer 2
dZ1 = dA1 * (1 - A1**2)
dW1 = dZ1.T @ A0  # (3, 4) @ (4, 2) -> (3, 2)
db1 = dZ1.sum(axis=0)
dA0 = dZ1 @ W1  # (4, 3) @ (3, 2) -> (4, 2): dA_prev of layer 1, ∂J/∂X
print("dW[2] =\n", dW2, "\ndb[2] =", db2, "\ndA[1] =\n", dA1)
print("dZ[1] =\n", dZ1, "\ndW[1] =\n", dW1, "\ndb[1] =", db1, "\ndA[0] =\n", dA0)

# %%
# :meth:`Network.loss_grad <softmaxreg.Network.loss_grad>` runs the same two passes and
# returns *J* and the gradient as one flat vector, laid out as the parameters are
# (``W[1]`` row by row, ``b[1]``, ``W[2]``, ``b[2]``):

J_lib, grad, _ = tiny.loss_grad(X, y)
by_hand = np.concatenate([dW1.ravel(), db1, dW2.ravel(), db2])
print(f"J: by hand {J:.12f}, library {J_lib:.12f}")
print("largest difference between the gradients:", f"{np.abs(grad - by_hand).max():.1e}")

# %%
# **Finite differences.** :func:`softmaxreg.gradcheck` moves each of the 21 parameters by
# ±h (h = 1e-5), takes ``(J(θ + h e_j) − J(θ − h e_j)) / 2h`` and reports, per layer, the
# largest relative error against backpropagation. Errors of 1e-9 or less mean the
# derivatives agree to some nine digits; a wrong formula gives errors near 1. With an L2 penalty
# ``(λ/2) Σ‖W[l]‖²`` (intercepts not penalised) the check passes too:

for l2 in (0.0, 0.1):
    for e in gradcheck(tiny, X, y, l2=l2):
        print(f"l2 = {l2}: layer {e.layer}, W {e.shape}, max relative error {e.max_rel_error:.1e}")

# %%
# The slide's ``dZᵀ dA[l−1]`` would fail that check: for the weights of layer 2,

theta = tiny.params.copy()
numeric_dW2 = np.zeros_like(W2)
for i, j in np.ndindex(W2.shape):
    for sign in (+1, -1):
        tiny.params[...] = theta
        tiny.W[1][i, j] += sign * 1e-5
        numeric_dW2[i, j] += sign * cross_entropy(tiny.forward(X, keep=False), y) / 2e-5
tiny.params[...] = theta
print("finite differences      =\n", numeric_dW2)
print("dZ[2]ᵀ A[1]  (the code) =\n", dW2)
print("dZ[2]ᵀ dA[1] (the slide as printed) =\n", dZ2.T @ dA1)

# %%
# 5. K = 2 is logistic regression
# -------------------------------
#
# With two classes, softmax only sees the difference of the two scores:
# ``softmax([z₀, z₁])₁ = 1 / (1 + e^{−(z₁ − z₀)}) = σ(z₁ − z₀)``, and the cross-entropy becomes
# the binary cross-entropy of logistic regression (CS 453X, "f_log is a special case of f_CE").
# So softmaxreg uses one sigmoid unit for *K* = 2, exactly as logistic regression does.

z2 = np.array([[0.3, 1.7], [2.0, -1.0]])  # two examples, scores of classes 0 and 1
print("softmax(z)[:, 1]     =", softmax(z2)[:, 1])
print("sigmoid(z1 − z0)     =", sigmoid(z2[:, 1] - z2[:, 0]))
print("cross_entropy        =", f"{cross_entropy(z2, [1, 0]):.6f}")
print("binary_cross_entropy =", f"{binary_cross_entropy(z2[:, 1] - z2[:, 0], [1, 0]):.6f}")

# %%
# On data, :class:`~softmaxreg.SoftmaxRegression` with two classes fits one weight vector
# (``coef_`` is 1 × d) and minimises scikit-learn's ``LogisticRegression`` objective
# ``C Σ_i CE_i + ½‖w‖²``. Fitted with the same *C* on the same data, the two give the same
# probabilities, to the solvers' tolerance:

Xb, yb = load_breast_cancer(return_X_y=True)
Xb = StandardScaler().fit_transform(Xb)
ours = SoftmaxRegression(C=1.0, tol=1e-10, max_iter=1000).fit(Xb, yb)
theirs = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(Xb, yb)
print("coef_ shapes:", ours.coef_.shape, theirs.coef_.shape)
print("largest difference in predict_proba:",
      f"{np.abs(ours.predict_proba(Xb) - theirs.predict_proba(Xb)).max():.1e}")
print("largest difference in coef_:        ", f"{np.abs(ours.coef_ - theirs.coef_).max():.1e}")
print("same predicted class for all", len(yb), "rows:",
      bool((ours.predict(Xb) == theirs.predict(Xb)).all()))

# %%
# 6. Decision regions on a two-dimensional problem
# ------------------------------------------------
#
# Three interleaved spirals, 100 points each. Softmax regression draws straight boundaries:
# the region of class *k* is where ``w_k · x + b_k`` is the largest score, an intersection of
# half-planes. A network with a hidden layer bends them.

rng = np.random.default_rng(0)
n_per_class = 100
radius = np.tile(np.linspace(0.05, 1.0, n_per_class), 3)
angle = np.concatenate([np.linspace(4 * k, 4 * k + 4, n_per_class) for k in range(3)])
angle += rng.normal(scale=0.2, size=angle.size)
X2 = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])
y2 = np.repeat([0, 1, 2], n_per_class)

linear = SoftmaxRegression(C=10.0).fit(X2, y2)
network = SoftmaxNetwork(hidden_layer_sizes=(64,), activation="tanh", solver="lbfgs",
                         alpha=1e-3, max_iter=1000, random_state=0).fit(X2, y2)
print(f"training accuracy: softmax regression {linear.score(X2, y2):.3f}, "
      f"network 2-64-3 {network.score(X2, y2):.3f}")

# %%

grid = np.linspace(-1.1, 1.1, 300)
G0, G1 = np.meshgrid(grid, grid)
points = np.column_stack([G0.ravel(), G1.ravel()])
fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), sharey=True)
for ax, model, title in zip(axes, (linear, network),
                            ("softmax regression (2-3)", "network 2-64-3, tanh")):
    regions = model.predict(points).reshape(G0.shape)
    ax.contourf(G0, G1, regions, levels=[-0.5, 0.5, 1.5, 2.5], cmap="Pastel1", alpha=0.9)
    ax.scatter(X2[:, 0], X2[:, 1], c=y2, cmap="Set1", s=12, edgecolors="k", linewidths=0.3)
    ax.set_title(f"{title}: accuracy {model.score(X2, y2):.2f}")
    ax.set_xlabel("$x_1$")
    ax.set_aspect("equal")
axes[0].set_ylabel("$x_2$")
fig.tight_layout()
plt.show()

# %%
# Where next: :doc:`plot_2_mnist` trains both models on handwritten digits, and the
# :doc:`../api/index` gives every function used here with its equation and shapes.
