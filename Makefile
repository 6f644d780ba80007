# The README's two commands: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test lint types pytest install clean bench system-packages

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# the console's browser libraries (Leaflet) from the npm registry, pinned by package-lock.json
WEB    := platform/web
VENDOR := $(WEB)/node_modules/.package-lock.json

$(VENDOR): $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error

# Debian packages the tests drive, installed here when missing (root, or sudo without a password):
# Chromium for the browser tests, with a CJK font so Chinese labels render in the screenshots, and
# libfaketime, which moves the machine's calendar for the tests that prove the suite date-free;
# Mosquitto, the MQTT broker the alarm delivery test starts and restarts itself; and the GStreamer
# RTSP server (for the system python3, through python3-gi) with H.264 (x264enc, in -ugly) and MJPEG
# (jpegenc, in -good), which serves the simulator's streams for the stream check
GST_PACKAGES := python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
	gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
system-packages:
	@{ command -v chromium >/dev/null && fc-list 2>/dev/null | grep -qi 'wenquanyi' \
	   && command -v faketime >/dev/null && { command -v mosquitto || test -x /usr/sbin/mosquitto; } >/dev/null \
	   && /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0'); \
	      gi.require_version('Gst', '1.0'); from gi.repository import Gst, GstRtspServer; Gst.init(None); \
	      assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('jpegenc')" 2>/dev/null; } || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo -n ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends chromium fonts-wqy-microhei fontconfig faketime libfaketime mosquitto \
	    $(GST_PACKAGES); }

install: $(STAMP) $(VENDOR)

demo: $(STAMP) $(VENDOR)
	$(BIN)/tianwang demo

lint: $(STAMP)
	$(BIN)/ruff check platform edge_agent simulator tests bench
	$(BIN)/ruff format --check platform edge_agent simulator tests bench

types: $(STAMP)
	$(BIN)/mypy platform edge_agent simulator

pytest: $(STAMP) $(VENDOR) system-packages
	$(BIN)/python -m pytest -q

test: lint types pytest

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache $(WEB)/node_modules
