# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · PyTorch basics: tensors, autograd, modules, and a first network
#
# Everything in this course, from attention to a pretrained GPT, is built from four PyTorch ideas:
# **tensors** (n-dimensional arrays that can live on a GPU), **autograd** (derivatives computed for
# you, on a graph recorded as your code runs), **`nn.Module`** (a container that owns parameters) and
# an **optimizer** that nudges those parameters downhill. By the end of this chapter you will be able
# to compute a gradient by hand and check it against autograd, explain why PyTorch's graphs are
# "dynamic", count and freeze a model's parameters, and train a small convolutional network that reads
# handwritten digits with more than 90% accuracy.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/01_pytorch_basics.ipynb)

# %%
import sys
if "google.colab" in sys.modules:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
from llm_from_scratch.device import select_device
from llm_from_scratch.utils import current_setting, seed_everything
SETTING = current_setting()  # "smoke" (CI), "book" (a CPU: the default) or "full" (a GPU)
generator = seed_everything(0)  # seeds Python, NumPy and torch; returns a torch.Generator

# %% [markdown]
# ## 1. Tensors
#
# A tensor is an array with a **shape**, a **dtype** and a **device**. Most bugs in deep learning are
# shape bugs, so we print shapes constantly.

# %%
# NBVAL_CHECK_OUTPUT
x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
print(x)
print("shape", tuple(x.shape), "| dtype", x.dtype, "| device", x.device)

# %% [markdown]
# Indexing and slicing work as in NumPy. Slices are *views*: they share memory with the original, so
# writing into one writes into the other.

# %%
# NBVAL_CHECK_OUTPUT
row, col = x[1], x[:, 2]
print("row 1:", row.tolist(), "| column 2:", col.tolist(), "| x[2, 3] =", x[2, 3].item())
view = x[0]
view[0] = 100.0
print("x[0, 0] after writing into the view:", x[0, 0].item())
x[0, 0] = 0.0

# %% [markdown]
# **Broadcasting.** When two shapes differ, PyTorch lines them up from the right and stretches any
# dimension of size 1. A `(3, 4)` matrix plus a `(4,)` vector adds the vector to every row; plus a
# `(3, 1)` column adds one number per row.

# %%
# NBVAL_CHECK_OUTPUT
print(x + torch.tensor([0.0, 10.0, 20.0, 30.0]))
print(x + torch.tensor([[100.0], [200.0], [300.0]]))

# %% [markdown]
# **Matrix multiplication** `A @ B` needs the inner sizes to agree: $(n \times k)(k \times m) = (n \times m)$.
# With more than two dimensions, the leading ones are a *batch*: `(B, n, k) @ (B, k, m) -> (B, n, m)`.
# Attention (chapter 03) is exactly this with `B` = batch × heads.

# %%
# NBVAL_CHECK_OUTPUT
A, B = torch.randn(2, 5, 3), torch.randn(2, 3, 4)
print("(2, 5, 3) @ (2, 3, 4) ->", tuple((A @ B).shape))
assert torch.allclose(A @ B, torch.stack([A[i] @ B[i] for i in range(2)]))
print("reductions:", x.sum().item(), x.mean(dim=0).tolist(), x.max(dim=1).values.tolist())

# %% [markdown]
# ## 2. Autograd: a gradient by hand, then by PyTorch
#
# Training means computing the derivative of a loss with respect to every parameter. Take one weight
# $w$, one input $x$ and one target $y$, and the squared error
#
# $$L(w) = (wx - y)^2, \qquad \frac{dL}{dw} = 2\,(wx - y)\,x \quad\text{(chain rule)}.$$
#
# With $w = 3$, $x = 2$, $y = 4$: $wx - y = 2$, so $L = 4$ and $\frac{dL}{dw} = 2 \cdot 2 \cdot 2 = 8$.

# %%
# NBVAL_CHECK_OUTPUT
w = torch.tensor(3.0, requires_grad=True)  # "track operations on w, I will want dL/dw"
x_, y_ = torch.tensor(2.0), torch.tensor(4.0)
L = (w * x_ - y_) ** 2
L.backward()  # walks the recorded graph backwards, applying the chain rule
by_hand = 2 * (3.0 * 2.0 - 4.0) * 2.0
print("L =", L.item(), "| autograd dL/dw =", w.grad.item(), "| by hand =", by_hand)
assert w.grad.item() == by_hand

# %% [markdown]
# The same for a whole linear model. With data $X \in \mathbb{R}^{N\times d}$, targets $y \in \mathbb{R}^N$
# and weights $w \in \mathbb{R}^d$, the mean squared error and its gradient are
#
# $$L(w) = \frac{1}{N}\,\lVert Xw - y \rVert^2, \qquad \nabla_w L = \frac{2}{N}\, X^\top (Xw - y).$$
#
# We compute the formula ourselves and compare it with autograd:

# %%
# NBVAL_CHECK_OUTPUT
N, d = 8, 3
X, y = torch.randn(N, d), torch.randn(N)
w = torch.randn(d, requires_grad=True)
loss = ((X @ w - y) ** 2).mean()
loss.backward()
grad_by_hand = 2 / N * X.T @ (X @ w.detach() - y)
print("autograd:", w.grad.numpy().round(4), "\nby hand: ", grad_by_hand.numpy().round(4))
assert torch.allclose(w.grad, grad_by_hand, atol=1e-6)

# %% [markdown]
# Two details that bite everyone once:
#
# - gradients **accumulate**: a second `backward()` *adds* to `.grad`. That is why training loops call
#   `optimizer.zero_grad()` every step.
# - `torch.no_grad()` (or `.detach()`) stops recording: use it for evaluation and for updating weights.

# %%
# NBVAL_CHECK_OUTPUT
w = torch.tensor(3.0, requires_grad=True)
for _ in range(2):
    ((w * 2.0 - 4.0) ** 2).backward()
print("after two backward passes, w.grad =", w.grad.item(), "(2 x 8)")
with torch.no_grad():
    z = w * 2
print("recorded under no_grad?", z.requires_grad)

# %% [markdown]
# ## 3. Dynamic graphs: the graph is whatever your code did
#
# PyTorch records operations *as they run* ("define-by-run"). Python control flow (`if`, `while`,
# recursion) is therefore allowed, and each call can build a different graph. Here a loop doubles its
# input until the norm passes 10; how many times depends on the data. If it doubles $n$ times, the
# output is $2^n x$ and the gradient of its sum is $2^n$ for every element: autograd follows whichever
# path was taken.

# %%
# NBVAL_CHECK_OUTPUT
def double_until_large(x):
    steps = 0
    while x.norm() < 10:
        x = x * 2
        steps += 1
    return x.sum(), steps

for start in ([0.1, 0.2], [3.0, 4.0], [20.0, 0.0]):
    x = torch.tensor(start, requires_grad=True)
    out, steps = double_until_large(x)
    out.backward()
    print(f"x = {start}: doubled {steps} times, gradient = {x.grad.tolist()} (2^{steps} = {2 ** steps})")
    assert torch.equal(x.grad, torch.full_like(x, 2.0 ** steps))

# %% [markdown]
# ### PyTorch 2 and PyTorch 1.x: what changed
#
# PyTorch 1.x was define-by-run only: every call re-runs your Python, which makes debugging easy (a
# `print` works anywhere) but leaves no whole-program view to optimise. Other frameworks of that time
# (TensorFlow 1, and later `torch.jit.script` inside PyTorch) built a **static graph** first and ran
# it many times: faster, but Python's `if` and `while` had to be rewritten in the graph's own
# language. PyTorch 2 (2023) keeps the dynamic, eager style you saw above and adds, without changing
# your model code:
#
# - **`torch.compile(model)`**: TorchDynamo watches the Python bytecode as it runs and captures the
#   tensor operations into graphs; where it meets something it cannot capture (a data-dependent
#   `while` like `double_until_large`), it breaks the graph, runs that piece eagerly and carries on.
#   TorchInductor then fuses the captured operations into a few generated kernels. Chapter 12
#   compiles a GPT and times it.
# - **`F.scaled_dot_product_attention`**: one call for softmax(QKᵀ/√d)V that dispatches to fused
#   kernels (FlashAttention, memory-efficient attention) on a GPU. Chapter 03 checks it against
#   attention written by hand.
# - **`torch.export`**: captures the *whole* program as one static graph, with no fallback to Python,
#   for deployment (a server, a phone). Where `torch.compile` may break the graph, `torch.export`
#   must not, so data-dependent control flow has to be written with `torch.cond` there.
#
# A quick check that the PyTorch 2 attention call computes the formula:

# %%
# NBVAL_CHECK_OUTPUT
q, k, v = (torch.randn(1, 2, 5, 4, generator=torch.Generator().manual_seed(i)) for i in range(3))
by_formula = torch.softmax(q @ k.transpose(-2, -1) / 4 ** 0.5, dim=-1) @ v
fused = F.scaled_dot_product_attention(q, k, v)
print("scaled_dot_product_attention:", tuple(fused.shape), "equal to softmax(QK^T/sqrt(d))V:",
      torch.allclose(fused, by_formula, atol=1e-6))
assert torch.allclose(fused, by_formula, atol=1e-6)

# %% [markdown]
# ## 4. `nn.Module`: models own their parameters
#
# A module is a class whose `__init__` creates sub-modules and parameters and whose `forward` says how
# to compute the output. Assigning a module or an `nn.Parameter` as an attribute *registers* it, so
# `model.parameters()` finds everything: that is what the optimizer updates and what `model.to(device)`
# moves.
#
# A linear layer $y = xW^\top + b$ with `in_features` inputs and `out_features` outputs has
# `in_features × out_features` weights and `out_features` biases.

# %%
# NBVAL_CHECK_OUTPUT
class TwoLayerNet(nn.Module):
    def __init__(self, n_in: int, n_hidden: int, n_out: int):
        super().__init__()
        self.hidden = nn.Linear(n_in, n_hidden)
        self.out = nn.Linear(n_hidden, n_out)

    def forward(self, x):  # (batch, n_in) -> (batch, n_out)
        return self.out(torch.relu(self.hidden(x)))

net = TwoLayerNet(4, 8, 3)
for name, p in net.named_parameters():
    print(f"{name:14} {str(tuple(p.shape)):8} {p.numel():4} parameters")
count = sum(p.numel() for p in net.parameters())
by_formula = (4 * 8 + 8) + (8 * 3 + 3)
print("total:", count, "| by the formula:", by_formula)
assert count == by_formula
print("output shape for a batch of 5:", tuple(net(torch.randn(5, 4)).shape))

# %% [markdown]
# **Freezing.** Fine-tuning (chapters 08–10) often trains only part of a model. Setting
# `requires_grad = False` on a parameter freezes it: autograd computes no gradient for it and the
# optimizer, given only the trainable parameters, leaves it alone.

# %%
# NBVAL_CHECK_OUTPUT
net.hidden.requires_grad_(False)
trainable = [p for p in net.parameters() if p.requires_grad]
print("trainable:", sum(p.numel() for p in trainable), "of", count)
frozen_before = net.hidden.weight.clone()
optimizer = torch.optim.SGD(trainable, lr=0.1)
net(torch.randn(5, 4)).sum().backward()
optimizer.step()
print("hidden.weight.grad:", net.hidden.weight.grad, "| out.weight.grad is set:", net.out.weight.grad is not None)
assert torch.equal(net.hidden.weight, frozen_before)
_ = net.hidden.requires_grad_(True)  # unfreeze again

# %% [markdown]
# The weights themselves are a dictionary of tensors, the **state dict**: it is what a checkpoint saves
# (the course saves it with `safetensors`) and what `load_state_dict` restores.

# %%
# NBVAL_CHECK_OUTPUT
state = net.state_dict()
print({k: tuple(v.shape) for k, v in state.items()})
copy = TwoLayerNet(4, 8, 3)
copy.load_state_dict(state)
probe = torch.randn(2, 4)
assert torch.equal(copy(probe), net(probe))

# %% [markdown]
# ## 5. A first real network: SimpleNet on handwritten digits
#
# Now everything together. The data: scikit-learn's bundled **digits**, 1,797 grayscale images of
# 8×8 pixels with 16 grey levels, each a handwritten 0–9. It ships with scikit-learn, so this runs
# offline. (In Colab at full size we use MNIST's 70,000 images of 28×28 instead, when torchvision is
# there.)

# %%
# NBVAL_CHECK_OUTPUT
from sklearn.datasets import load_digits

digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8), in [0, 1]
labels = torch.tensor(digits.target)
print("images", tuple(images.shape), "| labels", tuple(labels.shape))
print("images per digit:", torch.bincount(labels).tolist())

# %%
fig, axes = plt.subplots(2, 10, figsize=(10, 2.4))
for ax, img, label in zip(axes.flat, images, labels):
    ax.imshow(img[0], cmap="gray_r")
    ax.set_title(int(label), fontsize=9)
    ax.axis("off")
fig.suptitle("Twenty of the 8×8 digits: blurry, yet a human reads them easily")
plt.tight_layout()
plt.show()

# %% [markdown]
# We hold out 20% of the images as a **test set**, drawn with a seeded permutation, and never train on
# them: accuracy on images the model has not seen is the only honest measure.
#
# The smoke and book settings stay with the digits (seconds on a CPU); the full setting (a GPU) switches
# to MNIST when torchvision is available.

# %%
USE_MNIST = False
if SETTING == "full":
    try:
        import torchvision  # noqa: F401  (Colab has it)
        USE_MNIST = True
    except ImportError:
        pass

if USE_MNIST:
    from torchvision import datasets
    from llm_from_scratch.data import data_cache_dir

    root = data_cache_dir() / "mnist"
    train_set, test_set = (datasets.MNIST(root, train=t, download=True) for t in (True, False))
    x_train = train_set.data.unsqueeze(1).float() / 255.0  # (60000, 1, 28, 28)
    y_train = train_set.targets
    x_test = test_set.data.unsqueeze(1).float() / 255.0
    y_test = test_set.targets
else:
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    n_test = len(images) // 5
    test_idx, train_idx = order[:n_test], order[n_test:]
    x_train, y_train = images[train_idx], labels[train_idx]
    x_test, y_test = images[test_idx], labels[test_idx]
print("train", tuple(x_train.shape), "| test", tuple(x_test.shape))

# %% [markdown]
# **SimpleNet** is the classic small convolutional network: two convolution layers, a max-pooling
# layer and two linear layers. A convolution slides small $k \times k$ filters over the image, so the
# same few weights detect a stroke anywhere; pooling keeps the strongest response of each 2×2 block,
# halving the resolution. A `Conv2d(c_in, c_out, k)` has $c_\text{out}\,(c_\text{in}\,k^2 + 1)$
# parameters, independent of the image size; the first linear layer is where the image size enters.
#
# | layer | output shape (8×8 digits) |
# |---|---|
# | input | (B, 1, 8, 8) |
# | conv 3×3, 1→16, padding 1, ReLU | (B, 16, 8, 8) |
# | conv 3×3, 16→32, padding 1, ReLU | (B, 32, 8, 8) |
# | max-pool 2×2 | (B, 32, 4, 4) |
# | flatten, linear 512→64, ReLU | (B, 64) |
# | linear 64→10 | (B, 10): one score (logit) per digit |

# %%
class SimpleNet(nn.Module):
    """Two 3x3 convolutions, a 2x2 max-pool, two linear layers: (B, 1, S, S) -> (B, 10) logits."""

    def __init__(self, image_size: int = 8, channels: tuple[int, int] = (16, 32), hidden: int = 64,
                 n_classes: int = 10, dropout: float = 0.1):
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, kernel_size=3, padding=1)  # padding 1 keeps S x S
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=3, padding=1)
        self.dropout = nn.Dropout(dropout)  # active in train(), off in eval()
        self.fc1 = nn.Linear(c2 * (image_size // 2) ** 2, hidden)
        self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)  # (B, c2, S/2, S/2)
        x = self.dropout(torch.flatten(x, 1))
        x = F.relu(self.fc1(x))
        return self.fc2(x)

image_size = x_train.shape[-1]
model = SimpleNet(image_size=image_size)
x = torch.zeros(2, 1, image_size, image_size)
for name, layer in [("conv1", model.conv1), ("conv2", model.conv2)]:
    x = F.relu(layer(x))
    print(f"after {name}: {tuple(x.shape)}")
print("after pool: ", tuple(F.max_pool2d(x, 2).shape), "| logits:", tuple(model(torch.zeros(2, 1, image_size, image_size)).shape))

# %% [markdown]
# Counting its parameters with the formulas ($c_\text{out}(c_\text{in}k^2+1)$ per convolution,
# $n_\text{out}(n_\text{in}+1)$ per linear layer) and with PyTorch:

# %%
c_in, (c1, c2), k, hidden, s = 1, (16, 32), 3, 64, image_size // 2
by_formula = c1 * (c_in * k * k + 1) + c2 * (c1 * k * k + 1) + hidden * (c2 * s * s + 1) + 10 * (hidden + 1)
counted = sum(p.numel() for p in model.parameters())
for name, p in model.named_parameters():
    print(f"{name:12} {str(tuple(p.shape)):16} {p.numel():>7,}")
print(f"total {counted:,} | by the formulas {by_formula:,}")
assert counted == by_formula

# %% [markdown]
# ## 6. Training
#
# The loss for classification is the **cross entropy** of the softmax of the logits $z$ with the true
# class $y$: $\;L = -\log \dfrac{e^{z_y}}{\sum_j e^{z_j}}$. Every training step is the same four lines:
# forward, loss, `backward()`, `optimizer.step()` (after `zero_grad()`). We use PyTorch's Adam here;
# chapter 04 builds it from scratch.

# %%
def accuracy(model, x, y, batch_size=1000):
    """Fraction of correct predictions, in eval mode and without recording a graph."""
    model.eval()
    with torch.no_grad():
        correct = sum((model(x[i:i + batch_size]).argmax(dim=1) == y[i:i + batch_size]).sum().item()
                      for i in range(0, len(x), batch_size))
    return correct / len(x)

# %%
# NBVAL_IGNORE_OUTPUT
device = select_device()
if device.type == "cpu":
    # A model this small does microseconds of work per operation: on the CPU, waking a second thread
    # for each one costs more than it saves (and much more when other programs share the cores).
    torch.set_num_threads(1)
seed_everything(0)
model = SimpleNet(image_size=image_size).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
epochs = {"smoke": 6, "book": 30, "full": 3 if USE_MNIST else 30}[SETTING]
batch_size = 64 if not USE_MNIST else 128
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, y_train), batch_size=batch_size,
                                     shuffle=True, generator=torch.Generator().manual_seed(0))
x_test_d, y_test_d = x_test.to(device), y_test.to(device)
step_losses, test_accuracy = [], [accuracy(model, x_test_d, y_test_d)]
for epoch in range(epochs):
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step_losses.append(loss.item())
    test_accuracy.append(accuracy(model, x_test_d, y_test_d))
    print(f"epoch {epoch + 1}: last loss {step_losses[-1]:.3f}, test accuracy {test_accuracy[-1]:.3f}")
print(f"chance is 0.1; before training {test_accuracy[0]:.3f}; after {epochs} epochs {test_accuracy[-1]:.3f}")
assert test_accuracy[-1] > 0.9
assert sum(step_losses[-10:]) / 10 < sum(step_losses[:10]) / 10

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
ax1.plot(step_losses, alpha=0.4, label="per step")
window = 10
smooth = torch.tensor(step_losses).unfold(0, window, 1).mean(dim=1)
ax1.plot(range(window - 1, len(step_losses)), smooth, label=f"mean of {window}")
ax1.set(xlabel="step", ylabel="cross-entropy loss", title="Loss falls fast, then flattens")
ax1.legend()
ax2.plot(range(epochs + 1), test_accuracy, marker="o")
ax2.axhline(0.1, color="gray", linestyle=":", label="chance")
ax2.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1), title="Test accuracy climbs from chance to > 90%")
ax2.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Where does it go wrong? The test images it misreads, with its guess and the truth:

# %%
model.eval()
with torch.no_grad():
    predictions = model(x_test_d).argmax(dim=1).cpu()
wrong = (predictions != y_test).nonzero().flatten()[:10]
fig, axes = plt.subplots(1, 10, figsize=(10, 1.6))
for ax in axes:
    ax.axis("off")
for ax, i in zip(axes, wrong):
    ax.imshow(x_test[i, 0], cmap="gray_r")
    ax.set_title(f"{int(predictions[i])} (true {int(y_test[i])})", fontsize=8)
fig.suptitle("Misread test digits: guess (truth); many are hard for a human too", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What to try
#
# 1. Replace `SimpleNet` by a network of linear layers only (flatten the 8×8 image first) with a similar
#    number of parameters. Which reaches a higher test accuracy, and why might convolutions help?
# 2. Freeze `conv1` and `conv2` at their random initial values and train only `fc1` and `fc2`. How
#    much accuracy do random convolutional features already give?
# 3. Set the learning rate to `1e-1` and to `1e-5` and plot the loss curves next to the `2e-3` used here. Chapter 04
#    explains what you see.

# %% [markdown]
# ## Exercises
#
# Write each function from this chapter's formulas, then run its cell: `check` runs the exercise's tests
# and prints one line per failed test, with a hint that points back to the formula. A cell that still says
# `raise NotImplementedError` prints "not attempted yet". The solutions are in
# `chapters/solutions/01_pytorch_basics.ipynb` (try first!).

# %%
import torch
from llm_from_scratch.exercises import check

# %% [markdown]
# **01.1 A linear layer by hand.** `nn.Linear(in, out)` stores a weight $W$ of shape (out, in) and a bias
# $b$ of shape (out,), and computes $y = x W^\top + b$ for an input $x$ of shape (..., in). Write it with
# `@` (no `nn.functional`).

# %%
# NBVAL_CHECK_OUTPUT
def linear_forward(x, W, b):
    ### BEGIN SOLUTION
    return x @ W.T + b
    ### END SOLUTION


check("01.1", linear_forward)

# %% [markdown]
# **01.2 A gradient by hand.** For the mean squared error $L(w) = \frac1N \sum_i (x_i \cdot w - y_i)^2$ of a
# linear model, the chain rule gives $\partial L / \partial w = \frac2N X^\top (X w - y)$. Return it
# without autograd; the check compares it with what `loss.backward()` would give.

# %%
# NBVAL_CHECK_OUTPUT
def mse_grad(w, X, y):
    ### BEGIN SOLUTION
    residual = X @ w - y  # (N,)
    return 2.0 / X.shape[0] * X.T @ residual
    ### END SOLUTION


check("01.2", mse_grad)

# %% [markdown]
# **01.3 The output size of a convolution.** A convolution (or pooling) with kernel $k$, stride $s$ and
# padding $p$ turns a side of $n$ pixels into $\lfloor (n + 2p - k) / s \rfloor + 1$. Write it as an integer
# function; then check it against `SimpleNet`'s shapes above.

# %%
# NBVAL_CHECK_OUTPUT
def conv2d_output_size(n, kernel_size, stride=1, padding=0):
    ### BEGIN SOLUTION
    return (n + 2 * padding - kernel_size) // stride + 1
    ### END SOLUTION


check("01.3", conv2d_output_size)
