"""Pure renderers: post text to safe HTML, feeds to bytes. No request or app access."""
