"""NVDEC selection and its fallback to the CPU decoder (this machine has no NVIDIA GPU: the cuvid
decoders PyAV's wheel lists cannot open here, which is the fallback under test)."""

from __future__ import annotations

import json

import av
import pytest
from click.testing import CliRunner

from rtseg.cli import main
from rtseg.errors import InputError
from rtseg.video import hw_decode
from rtseg.video.av_source import AvSource


@pytest.fixture
def fresh_warnings(monkeypatch):
    monkeypatch.setattr("rtseg.core.notices._said", set())
    monkeypatch.delenv(hw_decode.DECODER_ENV, raising=False)


def read_all(source: AvSource) -> int:
    count = 0
    while source.read() is not None:
        count += 1
    source.close()
    return count


def test_decoder_words_and_the_environment(monkeypatch):
    from rtseg.assembly import InputConfig

    monkeypatch.delenv(hw_decode.DECODER_ENV, raising=False)
    assert hw_decode.decoder_choice(None) == "auto" and InputConfig().decoder == "auto"
    monkeypatch.setenv(hw_decode.DECODER_ENV, "cpu")
    assert hw_decode.decoder_choice(None) == "auto"  # the environment is the configuration's default
    assert InputConfig().decoder == "cpu" and InputConfig(decoder="nvdec").decoder == "nvdec"
    assert hw_decode.decoder_choice("nvdec") == "nvdec"
    monkeypatch.setenv(hw_decode.DECODER_ENV, "vaapi")
    with pytest.raises(InputError, match="unknown decoder 'vaapi'"):
        InputConfig()
    with pytest.raises(InputError, match="unknown decoder 'vaapi'"):
        hw_decode.decoder_choice("vaapi")


def test_auto_takes_nvdec_only_with_an_nvidia_device(monkeypatch, fresh_warnings):
    monkeypatch.setattr(hw_decode, "nvidia_device_present", lambda: False)
    assert hw_decode.wants_nvdec("auto", "h264") is None
    monkeypatch.setattr(hw_decode, "nvidia_device_present", lambda: True)
    assert hw_decode.wants_nvdec("auto", "h264") == "h264_cuvid"
    assert hw_decode.wants_nvdec("auto", "hevc") == "hevc_cuvid"
    assert hw_decode.wants_nvdec("auto", "rawvideo") is None  # no NVDEC twin: the CPU
    assert hw_decode.wants_nvdec("cpu", "h264") is None


def test_nvdec_that_cannot_open_falls_back_with_one_warning(tiny_video, fresh_warnings, capsys):
    source = AvSource.open_file(tiny_video, decoder="nvdec")
    assert source.decoder == "h264"  # h264_cuvid cannot open without an NVIDIA GPU
    assert read_all(source) == 24  # every frame, on the CPU
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtseg: warning: tiny.mp4: NVDEC (h264_cuvid) cannot open")
    assert lines[0].endswith("decoding on the CPU")


class FailingDecoder:
    """A decoder that opened but fails on its first packet (a profile NVDEC does not take)."""

    name = "h264_cuvid"

    def decode(self, packet):
        raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")


def test_nvdec_failing_on_the_first_packet_loses_no_frame(tiny_video, fresh_warnings, monkeypatch, capsys):
    monkeypatch.setattr(hw_decode, "wants_nvdec", lambda choice, codec: "h264_cuvid")
    monkeypatch.setattr(hw_decode, "open_nvdec", lambda stream, name, source: FailingDecoder())
    source = AvSource.open_file(tiny_video, decoder="auto")
    assert source.decoder == "h264"  # handed to the CPU at the first packet
    assert read_all(source) == 24 and source.damage.undecodable_frames == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "NVDEC (h264_cuvid) failed" in lines[0]


def test_run_with_decoder_nvdec_writes_every_frame(tiny_video, tiny_package, tmp_path, monkeypatch):
    monkeypatch.setattr("rtseg.core.notices._said", set())
    stats = tmp_path / "stats.json"
    args = ["run", "--video", tiny_video, "--model", tiny_package.onnx_path, "--backend", "onnxruntime"]
    args += ["--decoder", "nvdec", "--stats-json", stats, "-q"]
    result = CliRunner().invoke(main, list(map(str, args)))
    assert result.exit_code == 0 and "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if "NVDEC" in line]
    assert len(lines) == 1 and lines[0].startswith("rtseg: warning: tiny.mp4: NVDEC (h264_cuvid) cannot open")
    assert json.loads(stats.read_text())["frames"] == 24


def test_codec_auto_warns_once_when_a_gpu_is_there_but_nvenc_does_not_open(monkeypatch, capsys):
    from rtseg.video import encoders

    monkeypatch.setattr("rtseg.core.notices._said", set())
    monkeypatch.setattr(encoders, "encoder_opens", lambda codec, w, h: False)
    monkeypatch.setattr(encoders, "nvidia_device_present", lambda: False)
    assert encoders.choose_encoder("auto", 64, 48)[0] == "libx264"
    assert capsys.readouterr().err == ""  # no GPU: libx264 is simply the encoder
    monkeypatch.setattr(encoders, "nvidia_device_present", lambda: True)
    assert encoders.choose_encoder("auto", 64, 48)[0] == "libx264"
    assert encoders.choose_encoder("auto", 64, 48)[0] == "libx264"
    assert capsys.readouterr().err.splitlines() == [
        "rtseg: warning: NVENC (h264_nvenc) cannot open at 64x48; encoding with libx264 on the CPU"
    ]
    monkeypatch.setattr(encoders, "encoder_opens", lambda codec, w, h: codec == "h264_nvenc")
    assert encoders.choose_encoder("auto", 64, 48)[0] == "h264_nvenc"
