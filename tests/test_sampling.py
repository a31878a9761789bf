import torch

from kgrec.data.graph import Interactions
from kgrec.data.sampling import NegativeSampler


def test_negatives_unseen_and_warm_only():
    # user 0 saw items 0,1; user 1 saw item 2; item 3 and 4 never seen (cold)
    train = Interactions.from_lists([0, 0, 1], [0, 1, 2])
    s = NegativeSampler(train, num_items=5, seed=0)
    neg = s.sample(torch.tensor([0] * 200 + [1] * 200), n=1)
    assert set(neg[:200].tolist()) == {2}
    assert set(neg[200:].tolist()) == {0, 1}
    many = s.sample(torch.tensor([1, 1]), n=7)
    assert many.shape == (2, 7) and not (many == 2).any()
