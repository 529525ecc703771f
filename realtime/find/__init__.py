"""Find: where a face's occlusion mask is decided, in one place (`decide.py`), from evidence, precision first.

Evidence per face, in aligned-crop coordinates:
- the face region: the mesh's face oval. Nothing outside it is ever marked, so hair, clothes and background
  never change;
- the finder network: an `occlusion_mask` segmenter (its contract carries the calibrated threshold), or a
  blind-completion network's mask head;
- hands: mediapipe Hands on the whole frame (the hands stage, `hands.py`): a silhouette from the 21 landmarks,
  refined to the hand's pixels;
- graphic overlays (`graphic.py`): subtitles, bars and stickers by their flat colour, among the pixels the
  finder suspects.

Decision: a pixel is a candidate where the finder is above the threshold or a hand or an overlay covers it, inside
the face; regions smaller than `min_area` are dropped. In video the mask belongs to the track: a candidate region
reaches the output at once only when the finder is sure of it (mean probability >= `confident`) or a hand or an
overlay covers it; otherwise
once it was also a candidate in the previous frame or touches an occlusion already on (so an unsure speckle seen in
one frame never does). An occlusion stays on while the finder stays above `off_ratio` x threshold (hysteresis).
The decision is grown by `dilate` (occluder fringes) and handed to fill and blend as `face.mask`.
A track that was occluded and that the detector loses is carried at its last place for up to `max_coast` frames
while the visible face there stays the same: an occluder over the nose and eyes often hides the face from the
detector exactly when it most needs filling.

One module per part: `config` (FindConfig), `segmenter`, `hands` (the hands stage and the hand silhouette),
`graphic`, `surface` (one evidence source each), `decide` (the fusion), `evidence_map`, `stage` (the find stage).
"""
from realtime.find.config import FindConfig
from realtime.find.decide import confident_regions, connected_to, decide
from realtime.find.stage import FindStage, MaskHistory, finder_threshold

__all__ = ["FindConfig", "FindStage", "MaskHistory", "confident_regions", "connected_to", "decide", "finder_threshold"]
