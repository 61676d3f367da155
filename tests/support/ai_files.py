"""Files carrying each AI marker, made here: XMP DigitalSourceType and IPTC
2025.1 fields (written by ExifTool, an independent writer), a C2PA-signed
JPEG (c2pa-python's Builder, with a certificate chain made for the test),
and Stable Diffusion front ends' PNGs (text chunks, as they write them)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.support.artworks import need_exiftool

NEWSCODES = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def xmp_marked(path: Path, source_type: str | None = None, ai_system: str | None = None) -> Path:
    Image.new("RGB", (3000, 2000), "teal").save(path, quality=90)
    args = [need_exiftool(), "-q", "-overwrite_original", "-XMP-dc:Title=A marked image"]
    args += [f"-XMP-dc:Subject=k{i}" for i in range(8)]
    if source_type:
        args.append(f"-XMP-iptcExt:DigitalSourceType={NEWSCODES}{source_type}")
    subprocess.run([*args, str(path)], check=True, capture_output=True)
    if ai_system:  # IPTC 2025.1: newer than Debian's ExifTool, so exiv2 writes it
        import pyexiv2

        with pyexiv2.Image(str(path)) as image:
            image.modify_xmp({"Xmp.iptcExt.AISystemUsed": ai_system})
    return path


def stable_diffusion_png(path: Path, chunk: str = "parameters") -> Path:
    info = PngInfo()
    info.add_text(chunk, "a lighthouse at dusk, oil painting\nSteps: 20, Sampler: Euler a")
    Image.new("RGB", (2048, 2048), "navy").save(path, pnginfo=info)
    return path


def _name(common: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "stockup tests"),
    ])  # fmt: skip


def signing_chain() -> tuple[bytes, bytes]:
    """A leaf certificate and its CA (PEM chain) and the leaf's key, made now,
    with the extensions C2PA asks of a signer."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    usage = {k: False for k in ("content_commitment", "key_encipherment", "data_encipherment",
                                "key_agreement", "encipher_only", "decipher_only")}  # fmt: skip
    ca = (
        x509.CertificateBuilder().subject_name(_name("Test CA")).issuer_name(_name("Test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True,
                                     **usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(_name("Test signer")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                     **usage), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(
        serialization.Encoding.PEM
    )
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
    return chain, private


def c2pa_signed(path: Path, source_type: str = "trainedAlgorithmicMedia") -> Path:
    """A JPEG with a signed C2PA manifest whose c2pa.created action carries
    ``source_type``, as Firefly and DALL-E write them."""
    import c2pa

    plain = path.with_name("unsigned-" + path.name)
    Image.new("RGB", (2400, 1800), "purple").save(plain, quality=90)
    chain, key = signing_chain()
    manifest = {
        "claim_generator_info": [{"name": "stockup-tests", "version": "1"}],
        "title": path.name,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": NEWSCODES + source_type}]}}],
    }  # fmt: skip
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None))
    with plain.open("rb") as source, path.open("w+b") as dest:
        c2pa.Builder(manifest).sign(signer, "image/jpeg", source, dest)
    plain.unlink()
    return path
