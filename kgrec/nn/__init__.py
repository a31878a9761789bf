"""Neural modules: CF, KG encoder, text encoder, fusion, hybrid scorer. Tensors in, tensors out."""
