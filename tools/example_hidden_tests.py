"""An example of an instructor's grading tests for ``python -m llm_from_scratch grade --hidden PATH``.

The format: a Python file that defines ``HIDDEN_TESTS``, a dict from exercise id to a list of tests. A test
is a function ``test(fn)`` that receives the learner's function (or class) and raises ``AssertionError``
(a plain ``assert``) when it is wrong; the first line of its docstring names it in the CSV. It runs in the
learner's kernel after their notebook, so import what it needs inside the file.

Keep your real file private, outside this repository: everything in the package (the public tests, the
references) is readable by learners. These examples only show the format.

    python -m llm_from_scratch grade submissions/ --chapters 03,04 --hidden tools/example_hidden_tests.py
"""

import math

import torch


def attention_long_sequence(fn):
    """a long sequence in float64 (batch 1, 1 head, 257 positions)"""
    g = torch.Generator().manual_seed(1234)
    q, k, v = (torch.randn(1, 1, 257, 16, generator=g, dtype=torch.float64) for _ in range(3))
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(16), dim=-1)
    assert torch.allclose(fn(q, k, v), weights @ v, atol=1e-9), "wrong on a long float64 sequence"


def attention_does_not_change_inputs(fn):
    """the inputs are not modified in place"""
    q = torch.randn(2, 3, 4)
    before = q.clone()
    fn(q, q, q, torch.ones(3, 3, dtype=torch.bool).tril())
    assert torch.equal(q, before), "attention modified q in place"


def adam_many_steps(fn):
    """100 steps on a quadratic match torch.optim.Adam"""
    p = torch.nn.Parameter(torch.tensor([3.0, -2.0], dtype=torch.float64))
    opt = torch.optim.Adam([p], lr=0.1)
    theta, m, v = p.detach().clone(), torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    for t in range(1, 101):
        opt.zero_grad()
        (p**2).sum().backward()
        theta, m, v = fn(theta, 2 * theta, m, v, t, 0.1)
        opt.step()
    assert torch.allclose(theta, p.detach(), atol=1e-8), "drifts from torch.optim.Adam over 100 steps"


HIDDEN_TESTS = {
    "03.2": [attention_long_sequence, attention_does_not_change_inputs],
    "04.2": [adam_many_steps],
}
