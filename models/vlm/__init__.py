"""Vision-language model: a from-scratch Chinese report language model, the visual side, and their alignment."""
