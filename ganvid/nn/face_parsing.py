"""BiSeNet face parsing (Yu et al. "BiSeNet", 2018) as trained on CelebAMask-HQ, 19 classes.

The published weights are `79999_iter.pth` of zllrunning/face-parsing.PyTorch, the file
StyleGANEX and VToonify ship as `faceparsing.pth` (weights name `styleganex-faceparsing`).
Parameter names follow that file, so its state dict loads as is:

    cp.resnet.*            ResNet-18 trunk: conv1/bn1, layer1..layer4 (2 basic blocks each)
    cp.arm16, cp.arm32     attention refinement on the 1/16 (256 ch) and 1/32 (512 ch) features
    cp.conv_avg            global context: 512 -> 128, 1x1
    cp.conv_head32/16      3x3 convs after each nearest-neighbour upsampling
    ffm                    feature fusion of the 1/8 trunk features (128) and the context (128)
    conv_out               the prediction head (256 -> 256 -> 19), at 1/8, upsampled bilinearly
    conv_out16, conv_out32 auxiliary heads used in training only (kept so the file loads strictly)

The upstream trunk fetches torchvision's ImageNet ResNet-18 at construction; this one starts
from random weights and gets everything from the checkpoint (nothing is downloaded here).

Input: RGB in [0, 1] normalised with ImageNet's mean and std, trained at 512x512 (the network
is fully convolutional; other sizes run, faces should fill the image like aligned crops).
Output: logits [B, 19, H, W] at the input's size.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

#: CelebAMask-HQ labels in the order of the network's output channels.
CLASSES = (
    "background",
    "skin",
    "l_brow",
    "r_brow",
    "l_eye",
    "r_eye",
    "eye_g",
    "l_ear",
    "r_ear",
    "ear_r",
    "nose",
    "mouth",
    "u_lip",
    "l_lip",
    "neck",
    "neck_l",
    "cloth",
    "hair",
    "hat",
)
NUM_CLASSES = len(CLASSES)
#: What a face edit re-renders: skin, brows, eyes, glasses (eye_g), ears, nose, mouth, lips and
#: hair. Left out: background, earrings (ear_r), neck, necklace (neck_l), cloth and hat, which the
#: generator does not reproduce well and an edit should not touch.
FACE_AND_HAIR = tuple(
    CLASSES.index(name)
    for name in ("skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear")
    + ("nose", "mouth", "u_lip", "l_lip", "hair")
)
#: The size the published network was trained at (square).
INPUT_SIZE = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_NAME = "styleganex-faceparsing"


# ----------------------------------------------------------------------------- building blocks


class ConvBNReLU(nn.Module):
    """conv (no bias) -> BatchNorm -> ReLU. Keys `conv.weight`, `bn.*`."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    """ResNet basic block: relu(shortcut(x) + bn2(conv2(relu(bn1(conv1(x)))))).

    The shortcut is a 1x1 strided conv + BN (`downsample.0`, `downsample.1`) when the width or
    the resolution changes, else the identity.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if in_ch != out_ch or stride != 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(shortcut + residual)


class ResNet18Trunk(nn.Module):
    """ResNet-18 without its classifier; returns the 1/8, 1/16 and 1/32 features
    ([B,128,H/8,W/8], [B,256,H/16,W/16], [B,512,H/32,W/32])."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._stage(64, 64, stride=1)
        self.layer2 = self._stage(64, 128, stride=2)
        self.layer3 = self._stage(128, 256, stride=2)
        self.layer4 = self._stage(256, 512, stride=2)

    @staticmethod
    def _stage(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
        return nn.Sequential(BasicBlock(in_ch, out_ch, stride), BasicBlock(out_ch, out_ch, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, padding=1)
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


class AttentionRefinement(nn.Module):
    """3x3 ConvBNReLU, then a channel gate from its global average: sigmoid(BN(1x1 conv))."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_ch, out_ch, 3)
        self.conv_atten = nn.Conv2d(out_ch, out_ch, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        gate = self.bn_atten(self.conv_atten(feat.mean(dim=(2, 3), keepdim=True)))
        return feat * torch.sigmoid(gate)


class ContextPath(nn.Module):
    """Trunk + attention refinement + global context, brought up to 1/8 resolution.

    Returns (trunk 1/8 features [B,128], context at 1/8 [B,128], context at 1/16 [B,128]).
    """

    def __init__(self) -> None:
        super().__init__()
        self.resnet = ResNet18Trunk()
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128, 3)
        self.conv_head16 = ConvBNReLU(128, 128, 3)
        self.conv_avg = ConvBNReLU(512, 128, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        context = self.conv_avg(feat32.mean(dim=(2, 3), keepdim=True))  # broadcast over 1/32
        up32 = F.interpolate(self.arm32(feat32) + context, size=feat16.shape[2:], mode="nearest")
        up32 = self.conv_head32(up32)
        up16 = F.interpolate(self.arm16(feat16) + up32, size=feat8.shape[2:], mode="nearest")
        return feat8, self.conv_head16(up16), up32


class FeatureFusion(nn.Module):
    """Concatenate, 1x1 ConvBNReLU, then add a channel-gated copy: f + f * gate(f)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(in_ch, out_ch, 1)
        self.conv1 = nn.Conv2d(out_ch, out_ch // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_ch // 4, out_ch, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        gate = self.conv2(F.relu(self.conv1(feat.mean(dim=(2, 3), keepdim=True))))
        return feat + feat * torch.sigmoid(gate)


class OutputHead(nn.Module):
    """3x3 ConvBNReLU to `mid_ch`, then a 1x1 conv (no bias) to the class logits."""

    def __init__(self, in_ch: int, mid_ch: int, num_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_ch, mid_ch, 3)
        self.conv_out = nn.Conv2d(mid_ch, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """Face parsing network: normalised RGB [B,3,H,W] -> class logits [B,num_classes,H,W].

    The spatial path of the paper is replaced, as in the published model, by the trunk's 1/8
    features. Only the main head runs at inference; the auxiliary heads hold trained weights.
    """

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = OutputHead(256, 256, num_classes)
        self.conv_out16 = OutputHead(128, 64, num_classes)
        self.conv_out32 = OutputHead(128, 64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"BiSeNet expects [B,3,H,W], got {list(x.shape)}")
        feat8, context8, _ = self.cp(x)
        logits = self.conv_out(self.ffm(feat8, context8))
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=True)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}"


# ----------------------------------------------------------------------------- loading and use


def _as_state_dict(payload: object, source: str) -> dict[str, torch.Tensor]:
    """The flat state dict of a loaded file: the dict itself, or its 'state_dict' entry; a
    'module.' prefix (a DataParallel save) is removed."""
    from ganvid.errors import CheckpointError

    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        payload = payload["state_dict"]
    if not isinstance(payload, dict) or not all(torch.is_tensor(v) for v in payload.values()):
        raise CheckpointError(f"{source} is not a BiSeNet state dict (a dict of tensors)")
    if payload and all(k.startswith("module.") for k in payload):
        payload = {k[len("module.") :]: v for k, v in payload.items()}
    return dict(payload)


def load_bisenet(path: str | Path, device: str | torch.device = "cpu") -> BiSeNet:
    """A BiSeNet in eval mode from its file (names are resolved by the caller), loaded strictly
    and safely.

    `torch.load(weights_only=True)`; every missing, unexpected or mis-shaped tensor is named in a
    CheckpointError. BatchNorm step counters (`num_batches_tracked`, written by newer torch
    versions only) may be absent: they play no part at inference.
    """
    from ganvid.nn.checkpoints import load_state_dict_strict, safe_torch_load

    file = Path(path)
    weights = _as_state_dict(safe_torch_load(file), str(file))
    net = BiSeNet()
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked"):
            weights.setdefault(key, value)
    load_state_dict_strict(net, weights, str(file), network="a BiSeNet face-parsing network")
    return net.eval().to(device)


class FaceParser:
    """BiSeNet with its input normalisation: RGB uint8 images -> class probabilities or masks."""

    def __init__(self, net: BiSeNet, input_size: int = INPUT_SIZE) -> None:
        self.net = net
        self.input_size = input_size
        device = next(net.parameters()).device
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)

    @classmethod
    def load(cls, weights: str | Path, device: str | torch.device = "cpu") -> FaceParser:
        """The parser over the BiSeNet in file `weights` (e.g. `resolve(WEIGHTS_NAME)`)."""
        return cls(load_bisenet(weights, device))

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor | object) -> torch.Tensor:
        """uint8 RGB [B,H,W,3] (numpy or tensor) -> softmax probabilities [B,19,H,W] float32.

        Each image is resized to input_size x input_size (bilinear) for the network and the
        probabilities are resized back to H x W.
        """
        x = torch.as_tensor(images, device=self.mean.device)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"images must be [B,H,W,3] RGB, got {list(x.shape)}")
        size = tuple(x.shape[1:3])
        x = x.permute(0, 3, 1, 2).float() / 255.0
        square = (self.input_size, self.input_size)
        if size != square:
            x = F.interpolate(x, size=square, mode="bilinear", align_corners=False)
        probs = torch.softmax(self.net((x - self.mean) / self.std), dim=1)
        if size != square:
            probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
        return probs

    def masks(self, images, classes: tuple[int, ...] = FACE_AND_HAIR) -> torch.Tensor:
        """uint8 RGB [B,H,W,3] -> soft masks [B,H,W] in [0,1]: the summed probability of
        `classes` (default: face and hair)."""
        return self.probabilities(images)[:, list(classes)].sum(dim=1).clamp_(0.0, 1.0)

    def face_parsing_mask(self, frame_crop_rgb) -> torch.Tensor:
        """One RGB uint8 crop [H,W,3] -> float mask [H,W] of the face and hair (see masks)."""
        return self.masks(torch.as_tensor(frame_crop_rgb)[None])[0]
