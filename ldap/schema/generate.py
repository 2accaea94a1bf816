#!/usr/bin/env python3
"""Generate the stoney schema in both OpenLDAP forms from one table.

    python3 ldap/schema/generate.py          # (re)write stoney.ldif and stoney.schema
    python3 ldap/schema/generate.py --check  # exit 1 if the committed files are stale

The table below is the single source of truth. It follows the stoney cloud
directory contract (names, OIDs, syntaxes, length bounds, equality rules,
SINGLE-VALUE, MUST/MAY, STRUCTURAL/AUXILIARY). Where the contract is silent
(length bounds of some IA5 attributes, SUBSTR rules, equality rules of the
backup-plan strings and integers) the values of the original stoney cloud
sst.schema are used, so entries written by existing installations load
unchanged. DESC texts are our own.

Only standard-library Python; no third-party modules.
"""

from __future__ import annotations

import pathlib
import sys

ATTR_BASE = "1.3.6.1.4.1.22621.1.1"
CLASS_BASE = "1.3.6.1.4.1.22621.1.2"

SYNTAX = {
    "DS": "1.3.6.1.4.1.1466.115.121.1.15",  # Directory String
    "IA5": "1.3.6.1.4.1.1466.115.121.1.26",  # IA5 String
    "INT": "1.3.6.1.4.1.1466.115.121.1.27",  # Integer
    "BOOL": "1.3.6.1.4.1.1466.115.121.1.7",  # Boolean
}

# Shorthands for the matching rules.
CI = "caseIgnoreMatch"
CIS = "caseIgnoreSubstringsMatch"
IA5 = "caseIgnoreIA5Match"
IA5S = "caseIgnoreIA5SubstringsMatch"
INTM = "integerMatch"
BOOLM = "booleanMatch"

SV = True
MV = False

# (number, name, syntax, length bound or None, EQUALITY or None, SUBSTR or None,
#  single-valued, description)
ATTRIBUTES: list[tuple[int, str, str, int | None, str | None, str | None, bool, str]] = [
    # --- virtual machine, devices, pools, storage pools -------------------
    (21, "sstMemory", "INT", None, INTM, None, SV,
     "Memory of the virtual machine in bytes."),
    (62, "sstVirtualMachine", "IA5", 64, IA5, IA5S, MV,
     "Name (UUID) of a virtual machine."),
    (63, "sstDisplayName", "DS", 128, CI, CIS, SV,
     "Human readable display name."),
    (64, "sstVCPU", "INT", None, INTM, None, SV,
     "Number of virtual CPUs of the guest."),
    (65, "sstStatus", "IA5", 16, IA5, IA5S, SV,
     "Status of a virtual machine (running, paused, shutoff, ...)."),
    (68, "sstNode", "IA5", 64, IA5, IA5S, SV,
     "Name of the hypervisor node the virtual machine runs on."),
    (69, "sstType", "IA5", 32, IA5, IA5S, SV,
     "Type, depending on the object class (kvm, file, bridge, ...)."),
    (70, "sstOSArchitecture", "IA5", 16, IA5, IA5S, SV,
     "CPU architecture of the guest (for example x86_64)."),
    (71, "sstOSMachine", "IA5", 16, IA5, IA5S, SV,
     "Machine type of the guest (for example pc)."),
    (72, "sstOSType", "IA5", 16, IA5, IA5S, SV,
     "Operating system type of the guest (for example hvm)."),
    (73, "sstOSBootDevice", "IA5", 16, IA5, IA5S, MV,
     "Boot device of the guest (fd, hd, cdrom or network)."),
    (74, "sstFeature", "IA5", 16, IA5, IA5S, MV,
     "Hypervisor feature toggled on for the guest (pae, acpi, apic, ...)."),
    (75, "sstClockOffset", "IA5", 16, IA5, IA5S, SV,
     "Guest clock offset (utc, localtime, timezone or variable)."),
    (76, "sstOnPowerOff", "IA5", 16, IA5, IA5S, SV,
     "Action when the guest powers off."),
    (77, "sstOnReboot", "IA5", 16, IA5, IA5S, SV,
     "Action when the guest reboots."),
    (78, "sstOnCrash", "IA5", 16, IA5, IA5S, SV,
     "Action when the guest crashes."),
    (79, "sstEmulator", "DS", 256, CI, CIS, SV,
     "Fully qualified path of the device model emulator binary."),
    (80, "sstMemBalloon", "IA5", 16, IA5, IA5S, SV,
     "Memory balloon device model (none or virtio)."),
    (81, "sstDevice", "IA5", 16, IA5, IA5S, SV,
     "Disk device kind (floppy, disk or cdrom)."),
    (82, "sstSourceFile", "DS", 256, CI, CIS, SV,
     "Fully qualified path of the file or block device holding the disk."),
    (83, "sstTargetBus", "IA5", 16, IA5, IA5S, SV,
     "Disk target bus (ide, scsi, virtio, usb, ...)."),
    (84, "sstReadonly", "BOOL", None, BOOLM, None, SV,
     "Is the device read-only (TRUE or FALSE)."),
    (85, "sstDriverName", "IA5", 16, IA5, IA5S, SV,
     "Disk driver name (for example qemu)."),
    (86, "sstDriverType", "IA5", 16, IA5, IA5S, SV,
     "Disk driver type (for example qcow2)."),
    (87, "sstDisk", "IA5", 8, IA5, IA5S, SV,
     "Disk target name (vda, vdb, hda, ...)."),
    (88, "sstInterface", "IA5", 16, IA5, IA5S, SV,
     "Network interface name (for example net0)."),
    (89, "sstSourceBridge", "IA5", 16, IA5, IA5S, SV,
     "Name of the bridge an interface is attached to."),
    (90, "sstMacAddress", "IA5", 128, IA5, IA5S, SV,
     "MAC address of a network interface."),
    (91, "sstModelType", "IA5", 16, IA5, IA5S, SV,
     "Network interface model (virtio, e1000, ...)."),
    (105, "sstVolumeName", "IA5", 64, IA5, IA5S, SV,
     "Name (UUID) of a storage volume."),
    (106, "sstVolumeAllocation", "INT", None, INTM, None, SV,
     "Storage allocated in advance, in bytes."),
    (107, "sstVolumeCapacity", "INT", None, INTM, None, SV,
     "Storage capacity in bytes."),
    (128, "sstVirtualMachinePool", "IA5", 64, IA5, IA5S, MV,
     "Name (UUID) of a virtual machine pool."),
    (144, "sstDriverCache", "IA5", 16, IA5, IA5S, SV,
     "Disk driver cache mode (for example writeback)."),
    (160, "sstStoragePoolURI", "DS", 256, CI, None, SV,
     "Storage pool URI (RFC 3986)."),
    (163, "sstVirtualMachinePoolType", "IA5", 32, IA5, IA5S, SV,
     "Virtual machine pool type (dynamic, static, template, ...)."),
    (164, "sstVirtualMachineType", "IA5", 32, IA5, IA5S, SV,
     "Virtual machine type (dynamic, profile, static, template, ...)."),
    (165, "sstVirtualMachineSubType", "IA5", 32, IA5, IA5S, SV,
     "Virtual machine subtype (Golden-Image, Desktop, Server, ...)."),
    (208, "sstMigrationNode", "IA5", 64, IA5, IA5S, SV,
     "Node a virtual machine is to be migrated to."),
    # --- provisioning (one leaf per backup or restore run) ----------------
    # sstProvisioningMode is bounded to 8 characters like the original; OpenLDAP
    # does not enforce bounds, so modes such as unretainingSmallFiles load.
    (16, "sstProvisioningMode", "DS", 8, CI, None, SV,
     "Provisioning mode (the protocol step, for example snapshot)."),
    (17, "sstProvisioningState", "DS", 16, CI, None, SV,
     "0 (a command is waiting) or the UTC time YYYYMMDDThhmmssZ the last step finished."),
    (18, "sstProvisioningExecutionDate", "INT", None, INTM, None, SV,
     "Date the provisioning shall occur (YYYYMMDD) or 0."),
    (182, "sstProvisioningReturnValue", "INT", 3, INTM, None, SV,
     "Return value of the last provisioning step, 0 means success."),
    (196, "sstProvisioningExecutionTime", "IA5", 64, IA5, None, MV,
     "Duration of a provisioning step in seconds, written as step: seconds."),
    # --- cron (no equality rules: filters on these match nothing) ----------
    (183, "sstCronMinute", "IA5", None, None, None, MV, "Cron minute (0-59)."),
    (184, "sstCronHour", "IA5", None, None, None, MV, "Cron hour (0-23)."),
    (185, "sstCronDay", "IA5", None, None, None, MV, "Cron day of month (1-31)."),
    (186, "sstCronMonth", "IA5", None, None, None, MV, "Cron month (1-12)."),
    (187, "sstCronDayOfWeek", "IA5", None, None, None, MV,
     "Cron day of week (0-6, Sunday is 0)."),
    (188, "sstCronCommand", "DS", None, None, None, SV, "Command to be executed."),
    (189, "sstCronActive", "BOOL", None, None, None, SV,
     "Is the cron entry active (TRUE or FALSE)."),
    # --- backup plan -------------------------------------------------------
    (190, "sstBackupRootDirectory", "DS", 256, CI, None, SV,
     "URI of the backup root directory (file:///var/backup/virtualization)."),
    (191, "sstBackupRetainDirectory", "DS", 256, CI, None, SV,
     "URI of the local retain directory (file:///var/virtualization/retain)."),
    (192, "sstBackupRamDiskLocation", "DS", 256, CI, None, SV,
     "URI of the RAM disk used to save the virtual machine state."),
    (193, "sstRestoreVMWithoutState", "BOOL", None, None, None, SV,
     "Restore the virtual machine without its saved state (TRUE or FALSE)."),
    (194, "sstBackupExcludeFromBackup", "BOOL", None, None, None, SV,
     "Exclude the virtual machine from the backup (TRUE or FALSE)."),
    (195, "sstBackupNumberOfIterations", "INT", 2, INTM, None, SV,
     "Number of backup iterations to keep."),
    (197, "sstVirtualizationVirtualMachineSequenceStop", "IA5", 64, IA5, None, MV,
     "Stop order dependency, written as order: virtual machine."),
    (198, "sstVirtualizationVirtualMachineSequenceStart", "IA5", 64, IA5, None, MV,
     "Start order dependency, written as order: virtual machine."),
    (199, "sstVirtualizationBandwidthMerge", "INT", 32, INTM, None, SV,
     "Bandwidth of the merge in MB/s, 0 means unlimited."),
    (200, "sstVirtualizationVirtualMachineForceStart", "BOOL", None, None, None, SV,
     "Start the virtual machine anew if its state cannot be restored (TRUE or FALSE)."),
    (210, "sstVirtualizationDiskImagePermission", "INT", 4, INTM, None, SV,
     "Permission of new disk images, octal digits without leading zero (660)."),
    (211, "sstVirtualizationDiskImageFormat", "DS", 8, CI, None, SV,
     "Format of new disk images (qcow2)."),
    (212, "sstVirtualizationDiskImageOwner", "DS", 16, CI, None, SV,
     "Owner of new disk images."),
    (213, "sstVirtualizationDiskImageGroup", "DS", 16, CI, None, SV,
     "Group of new disk images."),
    (214, "sstVirtualizationDiskImageDirectoryOwner", "DS", 16, CI, None, SV,
     "Owner of new disk image directories."),
    (215, "sstVirtualizationDiskImageDirectoryGroup", "DS", 16, CI, None, SV,
     "Group of new disk image directories."),
    (216, "sstVirtualizationDiskImageDirectoryPermission", "INT", 4, INTM, None, SV,
     "Permission of new disk image directories, octal digits without leading zero (770)."),
]

# Attributes named in the MUST/MAY lists of the classes below whose OIDs the
# contract does not give. They are NOT picked freely: these are the numbers,
# syntaxes and rules of the original stoney cloud sst.schema, none of which
# collides with a number the contract uses.
ATTRIBUTES_NOT_IN_CONTRACT: list[tuple[int, str, str, int | None, str | None, str | None, bool, str]] = [
    (147, "sstNetworkDomainName", "IA5", 256, IA5, IA5S, SV,
     "Network domain name (for example example.org)."),
    (156, "sstNetworkHostname", "IA5", 32, IA5, IA5S, SV,
     "Host name (for example kvm-0001)."),
    (161, "sstStoragePoolType", "IA5", 32, IA5, IA5S, SV,
     "Storage pool type (dynamic, iso, static, template, ...)."),
    (219, "sstThinProvisioningVirtualMachine", "IA5", 64, IA5, IA5S, MV,
     "Name (UUID) of a virtual machine thin provisioned from this one."),
]

BACKUP_ATTRIBUTES = [
    "sstBackupNumberOfIterations", "sstBackupRootDirectory", "sstBackupRetainDirectory",
    "sstBackupRamDiskLocation", "sstRestoreVMWithoutState", "sstBackupExcludeFromBackup",
    "sstVirtualizationVirtualMachineSequenceStop",
    "sstVirtualizationVirtualMachineSequenceStart", "sstVirtualizationBandwidthMerge",
    "sstVirtualizationVirtualMachineForceStart", "sstVirtualizationDiskImageFormat",
    "sstVirtualizationDiskImageOwner", "sstVirtualizationDiskImageGroup",
    "sstVirtualizationDiskImagePermission", "sstVirtualizationDiskImageDirectoryOwner",
    "sstVirtualizationDiskImageDirectoryGroup", "sstVirtualizationDiskImageDirectoryPermission",
]

# (number, name, kind, MUST, MAY, description); all SUP top.
CLASSES: list[tuple[int, str, str, list[str], list[str], str]] = [
    (11, "sstProvisioning", "AUXILIARY",
     ["sstProvisioningExecutionDate", "sstProvisioningMode", "sstProvisioningState"],
     ["sstProvisioningReturnValue", "sstProvisioningExecutionTime"],
     "Provisioning protocol state of an entry (one leaf per backup or restore run)."),
    (26, "sstVirtualizationVirtualMachine", "STRUCTURAL",
     ["sstClockOffset", "sstDisplayName", "sstMemory", "sstNode", "sstOnCrash",
      "sstOnPowerOff", "sstOnReboot", "sstOSArchitecture", "sstOSBootDevice",
      "sstOSMachine", "sstOSType", "sstStatus", "sstType", "sstVCPU",
      "sstVirtualMachine", "sstVirtualMachinePool"],
     ["description", "sstFeature", "sstMigrationNode", "sstSourceFile",
      "sstVirtualMachineType", "sstVirtualMachineSubType",
      "sstThinProvisioningVirtualMachine", "sstNetworkDomainName", "sstNetworkHostname"],
     "A virtual machine."),
    (27, "sstVirtualizationVirtualMachineDevices", "AUXILIARY",
     ["sstEmulator", "sstMemBalloon"], [],
     "The devices container of a virtual machine."),
    (28, "sstVirtualizationVirtualMachineDisk", "STRUCTURAL",
     ["sstDevice", "sstDisk", "sstSourceFile", "sstTargetBus", "sstType"],
     ["sstDriverCache", "sstDriverName", "sstDriverType", "sstReadonly",
      "sstVolumeAllocation", "sstVolumeCapacity", "sstVolumeName"],
     "A disk of a virtual machine."),
    (29, "sstVirtualizationVirtualMachineInterface", "STRUCTURAL",
     ["sstInterface", "sstMacAddress", "sstModelType", "sstSourceBridge", "sstType"], [],
     "A network interface of a virtual machine."),
    (37, "sstVirtualMachines", "STRUCTURAL",
     ["sstVirtualMachinePool"],
     ["description", "sstDisplayName", "sstVirtualMachine", "sstVirtualMachinePoolType"],
     "A virtual machine pool."),
    (47, "sstStoragePoolObjectClass", "STRUCTURAL",
     ["sstStoragePoolURI", "sstStoragePoolType"], [],
     "A storage pool."),
    (57, "sstCronObjectClass", "AUXILIARY",
     ["sstCronMinute", "sstCronHour", "sstCronDay", "sstCronMonth", "sstCronDayOfWeek",
      "sstCronActive"],
     ["sstCronCommand"],
     "A cron schedule (local time on the node)."),
    (58, "sstVirtualizationBackupObjectClass", "AUXILIARY",
     [], BACKUP_ATTRIBUTES,
     "A backup plan of a virtual machine, a pool or the whole installation."),
]

CORE_ATTRIBUTES = {"description"}

HERE = pathlib.Path(__file__).resolve().parent
LDIF_PATH = HERE / "stoney.ldif"
SCHEMA_PATH = HERE / "stoney.schema"

HEADER = """\
stoney cloud virtualization schema (backup subset) for OpenLDAP.

GENERATED by ldap/schema/generate.py - edit the table there and rerun it.

Attribute types: 1.3.6.1.4.1.22621.1.1.<n>, object classes:
1.3.6.1.4.1.22621.1.2.<n> (22621 = stepping stone GmbH). Names, OIDs,
syntaxes and rules follow the stoney cloud directory contract; where the
contract is silent, the original sst.schema (2013) is followed.
Depends on core, cosine and inetorgperson ('description' comes from core).

Notes:
- Length bounds are not enforced by OpenLDAP (sstProvisioningMode{8} accepts
  'unretainingSmallFiles').
- Integer syntax refuses leading zeros: write permissions as 660, not 0660.
- BOOL and cron attributes without an EQUALITY rule match no filter such as
  (sstCronActive=TRUE); read the values and decide in code.
"""


def all_attributes():
    return sorted(ATTRIBUTES + ATTRIBUTES_NOT_IN_CONTRACT, key=lambda a: a[0])


def attribute_def(attr) -> str:
    n, name, syntax, bound, eq, substr, single, desc = attr
    parts = [f"( {ATTR_BASE}.{n}", f"NAME '{name}'", f"DESC '{desc}'"]
    if eq:
        parts.append(f"EQUALITY {eq}")
    if substr:
        parts.append(f"SUBSTR {substr}")
    parts.append(f"SYNTAX {SYNTAX[syntax]}" + (f"{{{bound}}}" if bound else ""))
    if single:
        parts.append("SINGLE-VALUE")
    parts.append(")")
    return parts


def oid_list(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    return "( " + " $ ".join(names) + " )"


def class_def(cls) -> list[str]:
    n, name, kind, must, may, desc = cls
    parts = [f"( {CLASS_BASE}.{n}", f"NAME '{name}'", f"DESC '{desc}'", f"SUP top {kind}"]
    if must:
        parts.append(f"MUST {oid_list(must)}")
    if may:
        parts.append(f"MAY {oid_list(may)}")
    parts.append(")")
    return parts


def validate() -> None:
    attrs = all_attributes()
    names = [a[1] for a in attrs]
    numbers = [a[0] for a in attrs]
    assert len(set(names)) == len(names), "duplicate attribute name"
    assert len(set(numbers)) == len(numbers), "duplicate attribute OID"
    for a in attrs:
        assert "'" not in a[7] and "\\" not in a[7], f"quote in DESC of {a[1]}"
    class_numbers = [c[0] for c in CLASSES]
    assert len(set(class_numbers)) == len(class_numbers), "duplicate class OID"
    known = set(names) | CORE_ATTRIBUTES
    used = set()
    for c in CLASSES:
        for a in c[3] + c[4]:
            assert a in known, f"{c[1]} uses undefined attribute {a}"
            used.add(a)
    unused = set(names) - used
    assert not unused, f"attributes in no class: {sorted(unused)}"


def wrap(words: list[str], first_prefix: str, cont_prefix: str, width: int) -> list[str]:
    """Greedy word wrap that never breaks inside a word."""
    lines: list[str] = []
    line = first_prefix + words[0]
    for word in words[1:]:
        if len(line) + 1 + len(word) > width:
            lines.append(line)
            line = cont_prefix + word
        else:
            line += " " + word
    lines.append(line)
    return lines


def split_words(parts: list[str]) -> list[str]:
    """Split a definition into wrap units without breaking inside quotes."""
    words: list[str] = []
    for part in parts:
        if part.startswith(("NAME '", "DESC '")):
            words.append(part)  # kept whole: quoted strings contain spaces
        else:
            words.extend(part.split(" "))
    return words


def render_ldif() -> str:
    out = ["# " + line if line else "#" for line in HEADER.splitlines()]
    out += [
        "#",
        "# Load into a running server: ldapadd -Y EXTERNAL -H ldapi:/// -f stoney.ldif",
        "# or at build time: include it after core, cosine and inetorgperson in a",
        "# slapadd -n0 configuration (see scripts/dev-up.sh).",
        "dn: cn=stoney,cn=schema,cn=config",
        "objectClass: olcSchemaConfig",
        "cn: stoney",
    ]
    # LDIF continuation lines start with one space that is removed when the
    # line is joined; a second space keeps the word separator.
    for attr in all_attributes():
        out += wrap(split_words(attribute_def(attr)), "olcAttributeTypes: ", "  ", 78)
    for cls in CLASSES:
        out += wrap(split_words(class_def(cls)), "olcObjectClasses: ", "  ", 78)
    return "\n".join(out) + "\n"


def render_schema() -> str:
    out = ["# " + line if line else "#" for line in HEADER.splitlines()]
    out += [
        "#",
        "# slapd.conf form: include core.schema, cosine.schema and inetorgperson.schema",
        "# before this file.",
        "",
    ]
    not_in_contract = {a[1] for a in ATTRIBUTES_NOT_IN_CONTRACT}
    for attr in all_attributes():
        if attr[1] in not_in_contract:
            out.append("# Not numbered in the contract: OID, syntax and rules of the original sst.schema.")
        parts = attribute_def(attr)
        out.append("attributetype " + parts[0])
        out += ["    " + p for p in parts[1:-1]]
        out[-1] += " )"
        out.append("")
    for cls in CLASSES:
        parts = class_def(cls)
        out.append("objectclass " + parts[0])
        for part in parts[1:-1]:
            if part.startswith(("MUST", "MAY")):
                out += wrap(part.split(" "), "    ", "        ", 78)
            else:
                out.append("    " + part)
        out[-1] += " )"
        out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    validate()
    files = {LDIF_PATH: render_ldif(), SCHEMA_PATH: render_schema()}
    if argv[1:] == ["--check"]:
        stale = [p.name for p, text in files.items()
                 if not p.exists() or p.read_text(encoding="utf-8") != text]
        if stale:
            print("stale, rerun ldap/schema/generate.py: " + ", ".join(stale), file=sys.stderr)
            return 1
        return 0
    if argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
