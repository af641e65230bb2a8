"""Device descriptions stay true: no frozen OS version, the real one from client hints."""

from __future__ import annotations

import pytest

from revocation import devices
from revocation.devices import Hints, identify, label

# Real user-agent strings of current browsers (late 2026), as they send them.
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
)
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:145.0) Gecko/20100101 Firefox/145.0"
CHROME_WINDOWS_7 = (
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36"
)
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/26.1 Safari/605.1.15"
)
FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:145.0) Gecko/20100101 Firefox/145.0"
SAFARI_MOJAVE = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/14.1.2 Safari/605.1.15"
)
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0"
FIREFOX_UBUNTU = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0"
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36"
)
EDGE_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36 EdgA/142.0.0.0"
)
SAMSUNG_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 "
    "(KHTML, like Gecko) SamsungBrowser/29.0 Chrome/136.0.0.0 Mobile Safari/537.36"
)
FIREFOX_ANDROID = "Mozilla/5.0 (Android 16; Mobile; rv:145.0) Gecko/145.0 Firefox/145.0"
SAFARI_IOS_26 = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/26.1 Mobile/15E148 Safari/604.1"
)
SAFARI_IOS_18 = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/26.0 Mobile/15E148 Safari/604.1"
)
CHROME_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_7 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) CriOS/142.0.7444.77 Mobile/15E148 Safari/604.1"
)
FIREFOX_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_7 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) FxiOS/145.0 Mobile/15E148 Safari/605.1.15"
)
CHROME_IOS_17 = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) CriOS/138.0.7204.156 Mobile/15E148 Safari/604.1"
)

# Real Sec-CH-UA values (the GREASE brand is spelt differently by each version).
CHROME_BRANDS = '"Chromium";v="142", "Google Chrome";v="142", "Not_A Brand";v="99"'
EDGE_BRANDS = '"Chromium";v="142", "Microsoft Edge";v="142", "Not_A Brand";v="99"'
BRAVE_BRANDS = '"Brave";v="142", "Chromium";v="142", "Not_A Brand";v="24"'
SAMSUNG_BRANDS = '"Samsung Internet";v="29.0", "Chromium";v="136", "Not.A/Brand";v="99"'
# Chrome 120's order: the GREASE brand first.
CHROME_120_BRANDS = '"Not_A Brand";v="8", "Chromium";v="120", "Google Chrome";v="120"'


def hints(brands: str, platform: str, version: str = "", model: str = "") -> Hints:
    """Return client hints as the headers carry them (structured-header strings)."""
    return Hints(
        brands=brands,
        platform=f'"{platform}"',
        platform_version=f'"{version}"' if version else "",
        model=f'"{model}"',
    )


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        # Windows 10 and 11 both say "Windows NT 10.0": no version.
        (CHROME_WINDOWS, "Chrome on Windows"),
        (EDGE_WINDOWS, "Edge on Windows"),
        (FIREFOX_WINDOWS, "Firefox on Windows"),
        # Older versions are what they say.
        (CHROME_WINDOWS_7, "Chrome on Windows 7"),
        # Every macOS since 11 says 10.15.7 (10.15 in Firefox).
        (CHROME_MAC, "Chrome on macOS"),
        (SAFARI_MAC, "Safari on macOS"),
        (FIREFOX_MAC, "Firefox on macOS"),
        (SAFARI_MOJAVE, "Safari on macOS 10.14"),
        (CHROME_LINUX, "Chrome on Linux"),
        (FIREFOX_LINUX, "Firefox on Linux"),
        (FIREFOX_UBUNTU, "Firefox on Ubuntu"),
        # Chrome's reduced user agent: "Android 10; K" on every device.
        (CHROME_ANDROID, "Chrome on Android"),
        (EDGE_ANDROID, "Edge on Android"),
        (SAMSUNG_ANDROID, "Samsung Internet on Android"),
        (FIREFOX_ANDROID, "Firefox on Android 16"),
        # Safari 26 says iOS 18_6; its own version is the system's.
        (SAFARI_IOS_26, "Safari on iPhone (iOS 26)"),
        (SAFARI_IOS_18, "Safari on iPhone (iOS 18)"),
        (SAFARI_IPAD, "Safari on iPad (iOS 26)"),
        # Another browser on iOS 18.6 or later may be on 26: no version.
        (CHROME_IOS, "Chrome on iPhone (iOS)"),
        (FIREFOX_IOS, "Firefox on iPhone (iOS)"),
        (CHROME_IOS_17, "Chrome on iPhone (iOS 17)"),
        ("curl/8.5.0", "curl"),
        ("", "Unknown device"),
    ],
)
def test_a_user_agent_alone_names_no_frozen_version(user_agent: str, expected: str) -> None:
    assert str(identify(user_agent)) == expected


@pytest.mark.parametrize(
    ("user_agent", "client_hints", "expected"),
    [
        (CHROME_WINDOWS, hints(CHROME_BRANDS, "Windows", "19.0.0"), "Chrome on Windows 11"),
        (CHROME_WINDOWS, hints(CHROME_BRANDS, "Windows", "13.0.0"), "Chrome on Windows 11"),
        (CHROME_WINDOWS, hints(CHROME_BRANDS, "Windows", "10.0.0"), "Chrome on Windows 10"),
        # Windows 7, 8 and 8.1 all say 0.x: the user agent's NT version tells them apart.
        (CHROME_WINDOWS_7, hints(CHROME_BRANDS, "Windows", "0.1.0"), "Chrome on Windows 7"),
        (EDGE_WINDOWS, hints(EDGE_BRANDS, "Windows", "19.0.0"), "Edge on Windows 11"),
        (CHROME_WINDOWS, hints(CHROME_120_BRANDS, "Windows", "15.0.0"), "Chrome on Windows 11"),
        # A Chromium build names no other brand.
        (
            CHROME_LINUX,
            hints('"Chromium";v="142", "Not_A Brand";v="24"', "Linux"),
            "Chromium on Linux",
        ),
        # Brave's user agent is Chrome's; its hints name it.
        (CHROME_WINDOWS, hints(BRAVE_BRANDS, "Windows", "19.0.0"), "Brave on Windows 11"),
        (CHROME_MAC, hints(CHROME_BRANDS, "macOS", "15.1.0"), "Chrome on macOS 15"),
        (CHROME_MAC, hints(CHROME_BRANDS, "macOS", "10.15.7"), "Chrome on macOS 10.15"),
        # Linux's platform version is the kernel's: not shown.
        (CHROME_LINUX, hints(CHROME_BRANDS, "Linux", "6.8.0"), "Chrome on Linux"),
        (
            CHROME_ANDROID,
            hints(CHROME_BRANDS, "Android", "15.0.0", "Pixel 8"),
            "Chrome on Pixel 8 (Android 15)",
        ),
        (
            SAMSUNG_ANDROID,
            hints(SAMSUNG_BRANDS, "Android", "14.0.0", "SM-S921B"),
            "Samsung Internet on SM-S921B (Android 14)",
        ),
        # Only the low-entropy hints (sent unasked): the brand and the platform.
        (CHROME_WINDOWS, hints(CHROME_BRANDS, "Windows"), "Chrome on Windows"),
        (CHROME_ANDROID, hints(CHROME_BRANDS, "Android"), "Chrome on Android"),
        # "Request desktop site" on Android: a Linux user agent, the real platform in hints.
        (CHROME_LINUX, hints(CHROME_BRANDS, "Android", "15.0.0"), "Chrome on Android 15"),
        # An iPhone's user agent put on desktop Chromium (emulation): what it really is.
        (SAFARI_IOS_26, hints(CHROME_BRANDS, "Linux"), "Chrome on Linux"),
    ],
)
def test_client_hints_give_the_real_version(
    user_agent: str, client_hints: Hints, expected: str
) -> None:
    assert str(identify(user_agent, client_hints)) == expected


def test_the_stored_form_is_language_neutral_and_reads_back() -> None:
    device = identify(CHROME_ANDROID, hints(CHROME_BRANDS, "Android", "15.0.0", "Pixel 8"))

    assert device.stored() == "Chrome|Android|15|Pixel 8"
    assert devices.stored(device.stored()) == device
    assert label(device.stored()) == "Chrome on Pixel 8 (Android 15)"


def test_a_row_without_a_stored_description_is_described_from_its_user_agent() -> None:
    assert label("", FIREFOX_LINUX) == "Firefox on Linux"
    assert label("", "") == "Unknown device"
    # A description in a form of someone else's, and no user agent: shown as it is.
    assert label("something else", "") == "something else"


def test_a_description_without_the_os_version_is_unsettled_and_names_its_family() -> None:
    coarse = identify(CHROME_WINDOWS)
    precise = identify(CHROME_WINDOWS, hints(CHROME_BRANDS, "Windows", "19.0.0"))

    assert not coarse.settled and precise.settled
    assert coarse.family() == precise.family() == "Chrome|Windows|"
    assert precise.stored().startswith(coarse.family())
    assert not identify(FIREFOX_WINDOWS).stored().startswith(coarse.family())


def test_hostile_hints_cannot_break_the_stored_form() -> None:
    evil = Hints(
        brands='"A|B\\"C\x00";v="1", ' * 500,
        platform='"Windows"',
        platform_version='"19.0.0"',
        model='"' + "x|y\n" * 100 + '"',
    )

    stored = identify(CHROME_WINDOWS, evil).stored()

    assert len(stored) <= devices.STORED_MAX_LENGTH
    assert len(stored.split("|")) == 4
    assert "\x00" not in stored and "\n" not in stored
