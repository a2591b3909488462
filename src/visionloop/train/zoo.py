"""The model zoo: torchvision detection architectures behind one interface.

Every entry builds an ``nn.Module`` that takes a list of CHW float images in
[0, 1] and, in training mode, a list of targets (``boxes`` xyxy pixels,
``labels`` = class id + 1: torchvision reserves 0 for the background), and
returns a loss dict; in eval mode it returns per-image ``boxes``, ``labels`` and
``scores``. Each model resizes its input itself to its ``imgsz``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from torch import nn

from visionloop.errors import UsageError


@dataclass(frozen=True)
class Architecture:
    name: str
    summary: str
    build: Callable[[int, int], nn.Module]  # (num_classes incl. background, imgsz) -> model
    mobile: bool


def _ssdlite(num_classes: int, imgsz: int) -> nn.Module:
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    model = ssdlite320_mobilenet_v3_large(
        weights=None,
        weights_backbone=None,
        num_classes=num_classes,
        score_thresh=0.001,
        detections_per_img=300,
    )
    model.transform.min_size = (imgsz,)
    model.transform.max_size = imgsz
    model.transform.fixed_size = (imgsz, imgsz)
    return cast(nn.Module, model)


_RCNN_EVAL = {"box_score_thresh": 0.001, "box_detections_per_img": 300}  # low threshold: full PR curves


def _resized(fn_name: str, **options: Any) -> Callable[[int, int], nn.Module]:
    """A builder for a torchvision detector that resizes its input to ``imgsz`` itself."""

    def build(num_classes: int, imgsz: int) -> nn.Module:
        from torchvision.models import detection

        fn = getattr(detection, fn_name)
        model = fn(
            weights=None,
            weights_backbone=None,
            num_classes=num_classes,
            min_size=imgsz,
            max_size=imgsz,
            **options,
        )
        return cast(nn.Module, model)

    return build


_frcnn_mobile = _resized(
    "fasterrcnn_mobilenet_v3_large_fpn",
    **_RCNN_EVAL,
    rpn_pre_nms_top_n_test=300,
    rpn_post_nms_top_n_test=300,
    # a CPU-sized second stage: far fewer proposals and RoI samples than the COCO recipe
    rpn_pre_nms_top_n_train=1000,
    rpn_post_nms_top_n_train=500,
    box_batch_size_per_image=128,
)
_frcnn_r50 = _resized("fasterrcnn_resnet50_fpn_v2", **_RCNN_EVAL)
_retinanet_r50 = _resized("retinanet_resnet50_fpn_v2", score_thresh=0.001, detections_per_img=300)


ZOO: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "ssdlite", "SSDlite + MobileNetV3-Large: small and fast, for phones and CPUs", _ssdlite, True
        ),
        Architecture(
            "frcnn-mobile",
            "Faster R-CNN + MobileNetV3-Large FPN: more accurate, still mobile",
            _frcnn_mobile,
            True,
        ),
        Architecture("frcnn-r50", "Faster R-CNN v2 + ResNet-50 FPN: strong, for GPUs", _frcnn_r50, False),
        Architecture(
            "retinanet-r50", "RetinaNet v2 + ResNet-50 FPN: strong one-stage, for GPUs", _retinanet_r50, False
        ),
    )
}


def build_model(name: str, n_classes: int, imgsz: int) -> nn.Module:
    """Build architecture ``name`` for ``n_classes`` object classes (background is added)."""
    if name not in ZOO:
        raise UsageError(f"unknown model {name!r}", fix=f"choose one of {', '.join(ZOO)}")
    if n_classes < 1:
        raise UsageError("a detector needs at least one class", fix="import labeled data first")
    model = ZOO[name].build(n_classes + 1, imgsz)
    for module in model.modules():
        # torchvision's mobile backbones use BatchNorm momentum 0.01-0.03, tuned for 600-epoch
        # ImageNet-style recipes: after a short run from scratch their running statistics are still
        # mostly the initial ones and the model in eval mode predicts garbage. 0.1 tracks them.
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.1
    return model
