"""cmake --install into a prefix, then `import lutdose` from outside the build and source trees:
the installed module finds the installed reference data (<prefix>/share/lutdose)."""
import os
import subprocess
import sys

BUILD = os.environ["LUTDOSE_BUILD_DIR"]
CMAKE = os.environ.get("LUTDOSE_CMAKE", "cmake")


def test_install_and_import(tmp_path):
    prefix = tmp_path / "prefix"
    subprocess.run([CMAKE, "--install", BUILD, "--prefix", str(prefix)], check=True, capture_output=True)
    site = prefix / f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/dist-packages"
    assert (site / "lutdose" / "__init__.py").is_file()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LUTDOSE_DATA_DIR")}
    env["PYTHONPATH"] = str(site)
    code = ("import lutdose, sys; print(lutdose.__file__); print(lutdose.reference_data()['data_dir']); "
            "r = lutdose.fit_tac([1, 24, 72, 168], [100, 80, 50, 20]); print(r.tia_MBq_h > 0)")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    file_, data_dir, ok = p.stdout.split("\n")[:3]
    assert file_.startswith(str(site))
    assert os.path.samefile(data_dir, prefix / "share" / "lutdose")
    assert ok == "True"
