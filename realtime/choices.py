"""Choices the CLI, the pipeline and the viewer share; importing this module costs nothing."""

# which network paints what memory and the mirrored half cannot: auto = the symmetry model when one is loaded, else a
# blind finder's own completion; none = classical inpainting only
NETWORK_FILLERS = ("auto", "symmetry", "blind", "none")

# execution providers a user can ask for; realtime.runner maps them to onnxruntime's names
PROVIDERS = ("auto", "cpu", "cuda", "tensorrt")
