"""The model registry; entries register themselves in their modules."""

from benchmark.registry import Registry

MODELS = Registry("model")
