//! The two non-maximum suppressions facenet-pytorch's MTCNN uses, computed as they are
//! (in `f32`, with their own area conventions), so that the same boxes survive.

/// torchvision's `nms`: boxes by descending score (stable); a box is dropped when its
/// IoU with a kept one exceeds `threshold`; areas `(x2 − x1)(y2 − y1)`. The indices kept,
/// best first.
pub(crate) fn nms_iou(boxes: &[[f32; 4]], scores: &[f32], threshold: f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let area = |b: &[f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let a = &boxes[i];
        let area_i = area(a);
        for &j in &order[pos + 1..] {
            if suppressed[j] {
                continue;
            }
            let b = &boxes[j];
            let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
            let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
            let inter = w * h;
            let iou = inter / (area_i + area(b) - inter);
            if f64::from(iou) > threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// facenet-pytorch's `nms_numpy` with the "Min" overlap (O-Net's last pass): areas
/// `(x2 − x1 + 1)(y2 − y1 + 1)`, overlap = intersection / the smaller area, a box kept
/// while its overlap with the best remaining one is at most `threshold` (in `f32`, as
/// NumPy compares a float32 array with a Python float). The indices kept, best first.
pub(crate) fn nms_min(boxes: &[[f32; 4]], scores: &[f32], threshold: f32) -> Vec<usize> {
    let area = |b: &[f32; 4]| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    // Ascending, as np.argsort; the best is taken from the end.
    let mut rest: Vec<usize> = (0..boxes.len()).collect();
    rest.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut keep = Vec::new();
    while let Some(i) = rest.pop() {
        keep.push(i);
        let a = &boxes[i];
        let area_i = area(a);
        rest.retain(|&j| {
            let b = &boxes[j];
            let w = (a[2].min(b[2]) - a[0].max(b[0]) + 1.0).max(0.0);
            let h = (a[3].min(b[3]) - a[1].max(b[1]) + 1.0).max(0.0);
            let overlap = (w * h) / area_i.min(area(b));
            overlap <= threshold
        });
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_boxes_keep_the_best_and_distant_ones_stay() {
        let boxes = [
            [0.0, 0.0, 10.0, 10.0],
            [1.0, 1.0, 11.0, 11.0],
            [50.0, 50.0, 60.0, 60.0],
        ];
        // IoU of the first two: 81 / 119 = 0.68.
        assert_eq!(nms_iou(&boxes, &[0.9, 0.95, 0.5], 0.5), vec![1, 2]);
        assert_eq!(nms_iou(&boxes, &[0.9, 0.95, 0.5], 0.7), vec![1, 0, 2]);
        // "Min": a box inside another overlaps it fully.
        let nested = [[0.0, 0.0, 20.0, 20.0], [5.0, 5.0, 10.0, 10.0]];
        assert_eq!(nms_min(&nested, &[0.8, 0.9], 0.7), vec![1]);
        assert_eq!(nms_iou(&nested, &[0.8, 0.9], 0.7), vec![1, 0]);
    }
}
