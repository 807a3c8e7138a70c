//! Training and evaluation on `lfw-faceswap` (filled by the training issue).
