"""Generated run names (``bright-owl-123``), as MLflow names runs without one."""

from __future__ import annotations

import random

_ADJECTIVES = (
    "agile amazing ambitious auspicious bedecked bemused blithe bold brave bright calm "
    "capable carefree casual charming clean clever colorful crawling dapper debonair "
    "delicate dashing eager efficient enchanting exuberant fearless gentle gifted glamorous "
    "gregarious handsome honorable inquisitive judicious kindly languid likeable lyrical "
    "magnificent marvelous merciful mysterious nebulous omniscient orderly peaceful placid "
    "polite popular powerful puzzled resilient respected rogue rumbling secretive selective "
    "serious shivering silent skillful sneaky spiffy stately suave thoughtful traveling "
    "trusting unique upbeat useful valuable victorious vigilant violent vital wise witty"
).split()
_NOUNS = (
    "ant ape asp auk bass bat bear bee bird boar bug calf carp cat chimp cod colt conch cow "
    "crab crane croc crow cub deer doe dog dolphin donkey dove duck eel elk fawn finch fish "
    "flea fly foal fowl fox frog gnat gnu goat goose grouse grub gull hare hawk hen hog horse "
    "hound jay kit kite koi lamb lark loon lynx mare midge mink mole moose moth mouse mule "
    "newt owl ox panda penguin perch pig pug quail ram rat ray robin roo rook seal shad shark "
    "sheep shoat shrew skink skunk sloth slug snail snake snipe squid stag steed stoat swan "
    "toad trout tern turtle vole wasp whale wolf worm wren yak zebra"
).split()


def generate_run_name() -> str:
    rng = random.SystemRandom()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randint(0, 999)}"
