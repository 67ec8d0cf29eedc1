"""Branding: the site's name and short name, its logo (and the icons made from it) and its theme colour.

Stored in the database (site_settings for the values, site_files for the logo and icons), changed
by admins only, each change audited and bumping the SITE scope so every web worker sees it within
FEEDAPP_STATE_TTL (feedapp.web.state reads read_branding() only when a scope version changed).

Logos are PNG or JPEG only, recognised by decoding them (never by name or declared type), capped in
bytes and in pixels before anything is decoded, and re-encoded from their pixels alone: whatever
else the file carried (metadata, text chunks, trailing bytes) is dropped. SVG is never accepted.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from feedapp.accounts import AccountError, N_, audit
from feedapp.content_scopes import SITE
from feedapp.models import SiteFile, SiteSetting, utcnow
from feedapp.roles import Actor

# site_settings keys
NAME_KEY, SHORT_NAME_KEY, THEME_KEY = "site_name", "short_name", "theme_color"
HEADER_SIZE_KEY = "logo_header_size"  # "WxH" of the header logo: pages give its box before it loads (no layout shift)
NAME_MAX, SHORT_NAME_MAX = 60, 12  # a manifest short_name shows under a home screen icon: about 12 characters fit

DEFAULT_THEME = "#0b57d0"  # static/feed.css --acc, templates/base.html theme-color, the static icons
WHITE = "#ffffff"
LIGHT_BG = "#f3f5f9"  # static/feed.css --bg (light): links in the accent colour sit on it
DARK_BG, DARK_CARD = "#0e1116", "#171b22"  # static/feed.css --bg and --card (dark); DARK_BG is also --on-acc there
AA = 4.5  # WCAG 2.x AA contrast for normal text (success criterion 1.4.3)
# The dark scheme's accent is lightened past AA to this: the shipped one (#8ab4f8) is as bright, links stay vivid.
DARK_TARGET = 6.0

LOGO_MAX_BYTES = 2 * 1024 * 1024
LOGO_MAX_PIXELS = 4096 * 4096  # checked from the header, before any pixel is decoded (decompression bombs)
LOGO_MIN_SIDE = 16
LOGO_KEEP = 1024  # the stored logo fits in this square (the poster prints it; icons are made from it)

# The files made from a logo, as served (feedapp.web.branding): name -> (width, height) box or exact size.
ICON_SIZES = {"icon-192": 192, "icon-512": 512, "maskable-512": 512, "apple-touch-icon": 180}
HEADER_LOGO_HEIGHT, HEADER_LOGO_MAX_WIDTH = 64, 320  # the header shows it 32 px high (sharp at 2x)
FILE_NAMES = ("logo", "logo-header", *ICON_SIZES)


class BrandingError(AccountError):
    """A branding value that cannot be accepted; message % params is fit to show (and translated by the console)."""


@dataclass(frozen=True)
class Branding:
    """What the console set; None (or no file) means the default (FEEDAPP_SITE_NAME, the static icons, #0b57d0)."""

    name: str | None = None
    short_name: str | None = None
    theme: str | None = None
    etags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # file name -> etag
    header_size: tuple[int, int] = (0, 0)  # of the header logo, in CSS pixels (it is drawn at 2x)

    @property
    def has_logo(self) -> bool:
        """A logo (and so the icons made from it) is set."""
        return "logo" in self.etags


def read_branding(session: Session) -> Branding:
    """The branding values and the etags of the branding files (not their bytes)."""
    values = dict(session.execute(select(SiteSetting.key, SiteSetting.value)
                                  .where(SiteSetting.key.in_((NAME_KEY, SHORT_NAME_KEY, THEME_KEY, HEADER_SIZE_KEY))))
                  .all())
    etags = dict(session.execute(select(SiteFile.name, SiteFile.etag).where(SiteFile.name.in_(FILE_NAMES))).all())
    width, _, height = values.get(HEADER_SIZE_KEY, "").partition("x")
    size = (int(width) // 2, int(height) // 2) if width.isdigit() and height.isdigit() else (0, 0)
    return Branding(values.get(NAME_KEY) or None, values.get(SHORT_NAME_KEY) or None, values.get(THEME_KEY) or None,
                    MappingProxyType(etags), size)


# --- changes ---------------------------------------------------------------------------------------------------------

def set_names(session: Session, actor: Actor, name: str, short_name: str) -> None:
    """Set the site's name and short name (empty: back to the default). Caller commits."""
    actor.check_admin()
    name, short_name = " ".join(name.split()), " ".join(short_name.split())
    if len(name) > NAME_MAX:
        raise BrandingError(N_("Use at most %(count)d characters."), count=NAME_MAX)
    if len(short_name) > SHORT_NAME_MAX:
        raise BrandingError(N_("Use at most %(count)d characters."), count=SHORT_NAME_MAX)
    _set(session, NAME_KEY, name)
    _set(session, SHORT_NAME_KEY, short_name)
    audit(session, actor.name, "set_site_name", "branding", f"name={name or '-'} short_name={short_name or '-'}")
    _changed(session)


def set_theme(session: Session, actor: Actor, colour: str) -> str | None:
    """Set the theme colour (#RRGGBB, checked for contrast; empty: the default); returns it. Caller commits.

    With a logo set, the icons drawn on the theme colour (maskable, apple-touch) are made again.
    """
    actor.check_admin()
    colour = check_theme(colour) if colour.strip() else None
    _set(session, THEME_KEY, colour or "")
    logo = session.get(SiteFile, "logo")
    if logo is not None:
        _store_files(session, _icons(_decode(logo.data), colour or DEFAULT_THEME))
    audit(session, actor.name, "set_theme_color", "branding", colour or "default")
    _changed(session)
    return colour


def set_logo(session: Session, actor: Actor, data: bytes) -> str:
    """Check, re-encode and store a PNG or JPEG logo and the icons made from it; returns the logo's etag.

    Raises BrandingError (nothing stored) for anything else. Caller commits.
    """
    actor.check_admin()
    image = _decode(data)
    theme = session.scalar(select(SiteSetting.value).where(SiteSetting.key == THEME_KEY)) or DEFAULT_THEME
    files = {"logo": _encode_logo(image), **_icons(image, theme)}
    _store_files(session, files)
    header = Image.open(io.BytesIO(files["logo-header"][1]))
    _set(session, HEADER_SIZE_KEY, f"{header.width}x{header.height}")
    etag = _etag(files["logo"][1])
    audit(session, actor.name, "set_logo", "branding",
          f"{image.format} {image.width}x{image.height} {len(data)} bytes etag={etag}")
    _changed(session)
    return etag


def remove_logo(session: Session, actor: Actor) -> bool:
    """Remove the logo and its icons (the initials badge and static icons come back); False when none was set."""
    actor.check_admin()
    removed = session.execute(delete(SiteFile).where(SiteFile.name.in_(FILE_NAMES))).rowcount or 0
    if not removed:
        return False
    _set(session, HEADER_SIZE_KEY, "")
    audit(session, actor.name, "remove_logo", "branding")
    _changed(session)
    return True


def _set(session: Session, key: str, value: str) -> None:
    row = session.get(SiteSetting, key)
    if not value:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(SiteSetting(key=key, value=value))
    else:
        row.value = value


def _changed(session: Session) -> None:
    from feedapp.ingest.store import bump_content_version  # the store imports much; only writers need it

    session.flush()
    bump_content_version(session, [SITE])


def _store_files(session: Session, files: dict[str, tuple[str, bytes]]) -> None:
    now = utcnow()
    for name, (content_type, data) in files.items():
        row = session.get(SiteFile, name)
        if row is None:
            row = SiteFile(name=name)
            session.add(row)
        row.content_type, row.data, row.etag, row.updated_at = content_type, data, _etag(data), now


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


# --- images ----------------------------------------------------------------------------------------------------------

def _decode(data: bytes) -> Image.Image:
    """The logo's pixels (RGB or RGBA, EXIF rotation applied, nothing else kept), or BrandingError."""
    if len(data) > LOGO_MAX_BYTES:
        raise BrandingError(N_("That file is %(size)s MB; a logo may be at most %(limit)d MB."),
                            size=f"{len(data) / 1024 / 1024:.1f}", limit=LOGO_MAX_BYTES // 1024 // 1024)
    not_image = BrandingError(N_("That file is not a PNG or JPEG image. Use a PNG or JPEG logo (SVG and other "
                                 "formats are refused)."))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Only these two decoders are tried: the file's name and declared type play no part.
            image = Image.open(io.BytesIO(data), formats=("PNG", "JPEG"))
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > LOGO_MAX_PIXELS:
                raise BrandingError(N_("That image is %(width)d×%(height)d pixels; a logo may have at most "
                                       "%(limit)s million pixels (for example 4096×4096)."),
                                    width=width, height=height, limit=f"{LOGO_MAX_PIXELS / 1e6:.1f}")
            if min(width, height) < LOGO_MIN_SIDE:
                raise BrandingError(N_("That image is too small: use one at least %(size)d pixels wide and high."),
                                    size=LOGO_MIN_SIDE)
            image.load()
            kind = image.format
            image = _upright(image)
    except BrandingError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own guard, past ours
        raise BrandingError(N_("That image has far too many pixels; a logo may have at most %(limit)s million (for "
                               "example 4096×4096)."), limit=f"{LOGO_MAX_PIXELS / 1e6:.1f}") from None
    except UnidentifiedImageError:
        raise not_image from None
    except (OSError, SyntaxError, ValueError, EOFError):  # a truncated or corrupt file
        raise BrandingError(N_("That image is damaged and could not be read. Save it again as PNG or JPEG.")) from None
    alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    mode = "RGBA" if alpha else "RGB"
    converted = image.convert(mode)
    # A new image from the pixels alone: no info (ICC profile, text chunks, EXIF) reaches the encoder.
    clean = Image.frombytes(mode, converted.size, converted.tobytes())
    clean.format = kind
    return clean


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; unturned when its EXIF is unreadable (it is dropped anyway)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about corrupt EXIF, which is no reason to refuse a logo
        try:
            return ImageOps.exif_transpose(image)
        except Exception:  # noqa: BLE001 - any EXIF parsing failure: keep the pixels as they are
            return image


def _encode_logo(image: Image.Image) -> tuple[str, bytes]:
    kept = image.copy()
    kept.thumbnail((LOGO_KEEP, LOGO_KEEP), Image.Resampling.LANCZOS)
    if image.format == "JPEG":  # photos stay JPEG (PNG would be several times larger)
        return "image/jpeg", _save(kept, "JPEG", quality=90)
    return "image/png", _save(kept, "PNG", optimize=True)


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _icons(image: Image.Image, theme: str) -> dict[str, tuple[str, bytes]]:
    """The icons and the header logo made from a logo (PNG)."""
    header = image.copy()
    header.thumbnail((HEADER_LOGO_MAX_WIDTH, HEADER_LOGO_HEIGHT), Image.Resampling.LANCZOS)
    icons = {
        # "any" icons: the whole logo, on transparency where it has some.
        "icon-192": _on_square(image, 192, None, _box_scale(image, 192)),
        "icon-512": _on_square(image, 512, None, _box_scale(image, 512)),
        # Maskable (W3C manifest, "purpose": "maskable"): launchers may cut the icon to any shape that keeps
        # the centred circle of 40% radius (the safe zone), so the logo's corners must lie inside that circle.
        "maskable-512": _on_square(image, 512, theme, _circle_scale(image, 512 * 0.4)),
        # iOS fills transparency with black and rounds the corners a little: opaque, with a margin.
        "apple-touch-icon": _on_square(image, 180, theme, _box_scale(image, 180 * 0.76)),
    }
    return {"logo-header": ("image/png", _save(header, "PNG", optimize=True)),
            **{name: ("image/png", _save(icon, "PNG", optimize=True)) for name, icon in icons.items()}}


def _box_scale(image: Image.Image, box: float) -> float:
    return box / max(image.width, image.height)


def _circle_scale(image: Image.Image, radius: float) -> float:
    # A w×h rectangle centred in a circle fits when its half-diagonal is at most the radius.
    return 2 * radius / math.hypot(image.width, image.height)


def _on_square(image: Image.Image, size: int, background: str | None, scale: float) -> Image.Image:
    canvas = Image.new("RGBA", (size, size), _rgb(background) + (255,) if background else (0, 0, 0, 0))
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    logo = image.convert("RGBA").resize((width, height), Image.Resampling.LANCZOS)
    canvas.alpha_composite(logo, ((size - width) // 2, (size - height) // 2))
    return canvas if background is None else canvas.convert("RGB")


# --- colours (WCAG 2.x relative luminance and contrast ratio) -------------------------------------------------------

def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _hex(rgb) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def luminance(colour: str) -> float:
    """Relative luminance of a #rrggbb colour (WCAG 2.x definition)."""
    def linear(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(c) for c in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours (1 to 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def mix(a: str, b: str, share_of_a: float) -> str:
    """a and b mixed in sRGB, share_of_a of a."""
    return _hex(x * share_of_a + y * (1 - share_of_a) for x, y in zip(_rgb(a), _rgb(b)))


def normalise_colour(value: str) -> str | None:
    """#rrggbb in lower case, or None when value is not #RRGGBB (# optional)."""
    value = value.strip().lower()
    if not value.startswith("#"):
        value = "#" + value
    if len(value) != 7 or any(c not in "0123456789abcdef" for c in value[1:]):
        return None
    return value


def check_theme(value: str) -> str:
    """The colour as #rrggbb when white text on it, and it as text on the page, meet WCAG AA; else BrandingError."""
    colour = normalise_colour(value)
    if colour is None:
        raise BrandingError(N_("Write the colour as # and six hexadecimal digits, for example #0b57d0."))
    ratio = min(contrast(colour, WHITE), contrast(colour, LIGHT_BG))
    if ratio < AA:
        raise BrandingError(N_("White text on %(colour)s, and %(colour)s links on the page, have a contrast of "
                               "%(ratio)s:1; WCAG AA needs at least 4.5:1. Choose a darker colour."),
                            colour=colour, ratio=f"{math.floor(ratio * 100) / 100:.2f}")
    return colour


@dataclass(frozen=True)
class Palette:
    """The accent tokens of static/feed.css for a theme colour, light and dark, each meeting WCAG AA where used."""

    acc: str  # light: buttons (white text on it), links on white and the page background
    soft: str  # light: a tint behind accent-coloured text (the office switcher, hovers)
    acc_dark: str  # dark: links on the dark surfaces, buttons with dark text on them
    soft_dark: str


def palette(theme: str) -> Palette:
    """Light and dark accent tokens from a theme colour that passed check_theme."""
    soft = WHITE
    for share in (0.12, 0.1, 0.08, 0.06, 0.04, 0.02):  # the lightest tint the accent still reads on
        candidate = mix(theme, WHITE, share)
        if contrast(theme, candidate) >= AA:
            soft = candidate
            break
    soft_dark = mix(theme, DARK_BG, 0.22)
    acc_dark = WHITE
    for step in range(51):  # lighten towards white until it reads on every dark surface it meets
        candidate = mix(WHITE, theme, step / 50)
        if min(contrast(candidate, DARK_CARD), contrast(candidate, soft_dark), contrast(candidate, DARK_BG)) >= DARK_TARGET:
            acc_dark = candidate
            break
    return Palette(theme, soft, acc_dark, soft_dark)
