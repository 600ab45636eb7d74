"""ACTION-NET (dynamic stream): the segment graph and the attention pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from s4aqa.methods.action_net import DynamicStream, temporal_graph


def test_temporal_graph_links_neighbours():
    graph = temporal_graph(5, 1)
    torch.testing.assert_close(graph.sum(dim=1), torch.ones(5))
    assert graph[0, 2] == 0 and graph[2, 1] > 0 and graph[2, 3] > 0


@pytest.mark.parametrize("graph", ["similarity", "temporal", "both"])
def test_dynamic_stream_shapes(graph):
    stream = DynamicStream(6, 16, 2, graph, 1, 0.0, 0.0).eval()
    x = torch.randn(3, 8, 6)
    assert stream(x).shape == (3, 16)
    weights = stream.attention(stream.tokens(x))
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))


def test_attention_of_a_trained_model(fit, staged, deep_tiny):
    method = fit("action_net")
    weights = method.attention(staged["test"])
    assert weights.shape == (len(staged["test"]), staged["test"].num_segments)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    assert method.embed(staged["test"]).shape == (len(staged["test"]), deep_tiny["hidden"])
