"""What every pixel wrapper set shares: the frame size, the stack depth, OpenCV with a clear error."""

from __future__ import annotations

from ms_ppo.errors import UserInputError

FRAME_STACK = 4
SCREEN_SIZE = 84


def require_cv2():
    """OpenCV (Gymnasium's frame wrappers resize with it), or a one-line error naming the package."""
    try:
        import cv2
    except ImportError:
        raise UserInputError("pixel environments need OpenCV: pip install opencv-python-headless") from None
    return cv2
