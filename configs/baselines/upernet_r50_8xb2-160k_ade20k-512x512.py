_base_ = ['./upernet_r50_8xb2-40k_ade20k-512x512.py', '../_base_/schedules/schedule_160k.py']
