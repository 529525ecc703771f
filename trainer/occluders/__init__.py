"""Occluder painters shared by training (trainer.occlusion, trainer.sequence_data) and evaluation
(trainer.evaluation): numpy + OpenCV only, never torch.

- layers: the alpha/colour layer pair, `composite` (the one place where pixels change), face layout, primitives;
- painters: static occluders for an aligned face crop (rectangles, text, hands, microphones, masks, ...);
- moving: occluders that move over whole video frames, placed from the face's landmarks.
"""
