/*
 * A stand-in for bcryptprimitives.dll, used only to run meteord.exe under
 * Wine for testing. Rust's standard library takes its random numbers from
 * ProcessPrng in that DLL (Windows 10 and later); Debian's Wine 8 does not
 * ship it, so every Rust program fails to load there. This stub answers
 * from RtlGenRandom (advapi32's SystemFunction036), which Wine has.
 * Never installed on Windows.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
